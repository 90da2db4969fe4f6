/**
 * Errors a client call can raise. Service errors arrive as application/problem+json (RFC 9457) and keep their
 * catalogue `code`; the KServe v2 routes answer `{"error": "..."}` and transport failures have no body at all,
 * so those get client-side codes.
 */
import type { ErrorCode } from '../errors.js';

export interface ProblemItem {
  /** Path into the request, e.g. `graph.nodes[2].inputs[1]`. */
  path: string;
  message: string;
}

export type ClientErrorCode =
  | ErrorCode
  /** A non-2xx answer without a problem+json `code` (e.g. the KServe v2 `{"error": ...}` form). */
  | 'HTTP_ERROR'
  /** fetch itself failed: connection refused, DNS, CORS. */
  | 'NETWORK_ERROR'
  /** The client's own `timeoutMs` elapsed. */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** A 2xx answer that is not the JSON the contract promises. */
  | 'INVALID_RESPONSE';

export interface ProblemFields {
  code: ClientErrorCode | (string & {});
  status: number;
  detail: string;
  title?: string;
  type?: string;
  errors?: ProblemItem[];
  /** Seconds, from `Retry-After` (OVERLOADED answers carry one). */
  retryAfter?: number;
  /** The raw response body, when there was one. */
  body?: unknown;
}

export class GradserveClientError extends Error {
  readonly code: ClientErrorCode | (string & {});
  readonly status: number;
  readonly detail: string;
  readonly title: string | undefined;
  readonly type: string | undefined;
  readonly errors: ProblemItem[];
  readonly retryAfter: number | undefined;
  readonly body: unknown;

  constructor(f: ProblemFields, opts: { cause?: unknown } = {}) {
    super(`${f.code} (${f.status}): ${f.detail}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GradserveClientError';
    this.code = f.code;
    this.status = f.status;
    this.detail = f.detail;
    this.title = f.title;
    this.type = f.type;
    this.errors = f.errors ?? [];
    this.retryAfter = f.retryAfter;
    this.body = f.body;
  }
}

export function isGradserveClientError(e: unknown): e is GradserveClientError {
  return e instanceof GradserveClientError;
}

function parseRetryAfter(h: string | null): number | undefined {
  if (h === null) return undefined;
  const s = Number(h);
  if (Number.isFinite(s)) return s;
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

/** Turn a non-2xx response into a GradserveClientError, reading whichever error shape the route uses. */
export async function errorFromResponse(res: { status: number; statusText: string; headers: { get(name: string): string | null }; text(): Promise<string> }): Promise<GradserveClientError> {
  const text = await res.text().catch(() => '');
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON (a proxy's HTML page, say): keep the text as the detail.
  }
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  if (body !== null && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.code === 'string') {
      return new GradserveClientError({
        code: b.code,
        status: typeof b.status === 'number' ? b.status : res.status,
        detail: typeof b.detail === 'string' ? b.detail : String(b.title ?? res.statusText),
        title: typeof b.title === 'string' ? b.title : undefined,
        type: typeof b.type === 'string' ? b.type : undefined,
        errors: Array.isArray(b.errors) ? (b.errors as ProblemItem[]) : undefined,
        retryAfter,
        body,
      });
    }
    if (typeof b.error === 'string') {
      return new GradserveClientError({ code: 'HTTP_ERROR', status: res.status, detail: b.error, retryAfter, body });
    }
  }
  const detail = typeof body === 'string' && body !== '' ? body.slice(0, 500) : `HTTP ${res.status} ${res.statusText}`;
  return new GradserveClientError({ code: 'HTTP_ERROR', status: res.status, detail, retryAfter, body });
}
