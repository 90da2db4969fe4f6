/**
 * The one error catalogue of gradserve (API.md "Errors (v1)"): code -> HTTP status -> title.
 * The engine, the binding layer and the HTTP layer all throw GradserveError; the server renders it as
 * application/problem+json. Add a code here and nowhere else.
 */
export const ERROR_CATALOGUE = {
  INVALID_JSON: { status: 400, title: 'Invalid JSON' },
  INVALID_REQUEST: { status: 400, title: 'Invalid request' },
  INVALID_TENSOR: { status: 400, title: 'Invalid tensor' },
  UNKNOWN_OP: { status: 422, title: 'Unknown op' },
  INVALID_ATTRS: { status: 422, title: 'Invalid attributes' },
  UNKNOWN_VALUE: { status: 422, title: 'Unknown value' },
  DUPLICATE_NAME: { status: 422, title: 'Duplicate name' },
  GRAPH_CYCLE: { status: 422, title: 'Graph has a cycle' },
  MISSING_INPUT: { status: 422, title: 'Missing input' },
  SHAPE_MISMATCH: { status: 422, title: 'Shape mismatch' },
  DATATYPE_MISMATCH: { status: 422, title: 'Datatype mismatch' },
  NOT_SCALAR: { status: 422, title: 'Not a scalar' },
  NOT_DIFFERENTIABLE: { status: 422, title: 'Not differentiable' },
  INDEX_OUT_OF_RANGE: { status: 422, title: 'Index out of range' },
  INVALID_CAST: { status: 422, title: 'Invalid cast' },
  SINGULAR_MATRIX: { status: 422, title: 'Singular matrix' },
  NOT_POSITIVE_DEFINITE: { status: 422, title: 'Not positive definite' },
  // linear algebra: spectral decompositions
  NO_CONVERGENCE: { status: 422, title: 'No convergence' },
  TOO_LARGE: { status: 413, title: 'Too large' },
  UNAUTHORIZED: { status: 401, title: 'Unauthorized' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  OVERLOADED: { status: 503, title: 'Overloaded' },
  DEADLINE_EXCEEDED: { status: 504, title: 'Deadline exceeded' },
  CANCELLED: { status: 499, title: 'Client closed request' },
  INVALID_MODEL: { status: 400, title: 'Invalid model' },
  UNSUPPORTED_MODEL: { status: 422, title: 'Unsupported model' },
  MODEL_UNAVAILABLE: { status: 503, title: 'Model unavailable' },
  // an op this build of the native kernels cannot run (built without LAPACK)
  NOT_IMPLEMENTED: { status: 501, title: 'Not implemented in this build' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ErrorItem {
  /** Path into the request, e.g. `graph.nodes[2].inputs[1]` or `inputs.x.data`. */
  path: string;
  message: string;
}

export class GradserveError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: ErrorItem[] | undefined;
  /** Extra response headers (e.g. Retry-After for OVERLOADED). */
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, detail: string, opts: { errors?: ErrorItem[]; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GradserveError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.errors = opts.errors;
    this.headers = opts.headers;
  }

  get detail(): string {
    return this.message;
  }
}

export function isGradserveError(e: unknown): e is GradserveError {
  return e instanceof GradserveError;
}

/** Shorthand used across the engine: `fail('SHAPE_MISMATCH', 'node "y" (matmul): [2, 3] and [4, 5]', 'graph.nodes[0]')`. */
export function fail(code: ErrorCode, detail: string, path?: string): never {
  throw new GradserveError(code, detail, path === undefined ? {} : { errors: [{ path, message: detail }] });
}

/** Shapes are written `[2, 3]` in every message. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Bytes in binary units: 274877906944 -> "256 GiB". */
export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, '');
  return `${s} ${units[i]}`;
}
