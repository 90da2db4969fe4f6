/** Request tensors in, response tensors out: the HTTP layer's use of src/tensor/wire.ts. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Engine, Tensors } from '../engine.types.js';
import { GradserveError, fmtShape } from '../errors.js';
import { nameMap, own } from '../graph/names.js';
import type { Graph, ValueInfo } from '../graph/types.js';
import { parseDType, type DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { decodeTensor, encodeTensor, type TensorEncoding, type UnsafeInt64, type WireTensorOut } from '../tensor/wire.js';
import { kernels } from '../kernels.js';
import { RawB64, RawJsonArray } from './bigjson.js';
import { acceptsBinary, FrameBuilder, type FramedTensor, sendFrame } from './framing.js';

/** Refuses a tensor whose declared shape is over the element limit before anything is allocated. */
export function checkElements(wire: unknown, path: string, maxElements: number): void {
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) return;
  const shape = (wire as { shape?: unknown }).shape;
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) return;
  let n = 1;
  for (const d of shape as number[]) n *= d;
  if (n > maxElements) {
    const message = `shape ${fmtShape(shape as number[])} has ${n} elements, over the limit of ${maxElements} per tensor (GRADSERVE_MAX_TENSOR_ELEMENTS)`;
    throw new GradserveError('TOO_LARGE', `${path}: ${message}`, { errors: [{ path: `${path}.shape`, message }] });
  }
}

export function checkGraphSize(graph: Graph, maxNodes: number): void {
  if (graph.nodes.length > maxNodes) {
    const message = `the graph has ${graph.nodes.length} nodes, over the limit of ${maxNodes} (GRADSERVE_MAX_NODES)`;
    throw new GradserveError('TOO_LARGE', message, { errors: [{ path: 'graph.nodes', message }] });
  }
}

function declaredDType(graph: Graph, name: string): DType | undefined {
  const d = own(graph.inputs, name)?.datatype;
  return d === undefined ? undefined : parseDType(d);
}

export function decodeInputs(graph: Graph, wire: Record<string, unknown>, maxElements: number): Tensors {
  const out: Tensors = nameMap();
  for (const [name, w] of Object.entries(wire)) {
    const path = `inputs.${name}`;
    checkElements(w, path, maxElements);
    const spec = own(graph.inputs, name);
    out[name] = decodeTensor(w, path, { dtype: declaredDType(graph, name), shape: spec?.shape });
  }
  return out;
}

function hasOwnDType(w: unknown): boolean {
  return typeof w === 'object' && w !== null && !Array.isArray(w) && (w as { datatype?: unknown }).datatype !== undefined;
}

/**
 * Decodes cotangents/tangents/vectors keyed by value names. A shorthand without datatype takes the datatype of the
 * value it belongs to (an input's, else the inferred one), so FP64 graphs accept bare arrays too.
 */
export function decodeKeyed(
  engine: Engine,
  graph: Graph,
  inputs: Tensors,
  wire: Record<string, unknown>,
  field: string,
  maxElements: number,
): Tensors {
  let inferred: Record<string, ValueInfo> | undefined;
  const dtypeOf = (name: string): DType | undefined => {
    const t = own(inputs, name);
    if (t !== undefined) return t.dtype;
    const d = declaredDType(graph, name);
    if (d !== undefined) return d;
    if (inferred === undefined) {
      try {
        inferred = engine.shapes(graph, inputs).values;
      } catch {
        // The run reports the graph's error with full context; a default datatype is enough until then.
        inferred = nameMap();
      }
    }
    return own(inferred, name)?.datatype;
  };
  const out: Tensors = nameMap();
  for (const [name, w] of Object.entries(wire)) {
    const path = `${field}.${name}`;
    checkElements(w, path, maxElements);
    out[name] = decodeTensor(w, path, hasOwnDType(w) ? undefined : { dtype: dtypeOf(name) });
  }
  return out;
}

/** `/v1/shapes` inputs: tensors, or `{shape, datatype}` specs without data. */
export function decodeShapeInputs(graph: Graph, wire: Record<string, unknown>, maxElements: number): Record<string, Tensor | ValueInfo> {
  const out: Record<string, Tensor | ValueInfo> = nameMap();
  for (const [name, w] of Object.entries(wire)) {
    const path = `inputs.${name}`;
    if (typeof w === 'object' && w !== null && !Array.isArray(w) && (w as { data?: unknown }).data === undefined && (w as { b64?: unknown }).b64 === undefined) {
      const { shape, datatype } = w as { shape?: unknown; datatype?: unknown };
      if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
        const message = 'a tensor spec without data needs a shape of non-negative integers (each at most 2^53 - 1)';
        throw new GradserveError('INVALID_TENSOR', `${path}: ${message}`, { errors: [{ path: `${path}.shape`, message }] });
      }
      // Nothing is allocated for a spec, but the values inferred from it would be: the same limit as for a tensor.
      checkElements(w, path, maxElements);
      let dtype = declaredDType(graph, name) ?? 'FP32';
      if (datatype !== undefined) {
        const d = typeof datatype === 'string' ? parseDType(datatype) : undefined;
        if (d === undefined) {
          const message = `unknown datatype ${JSON.stringify(datatype)} (expected FP32, FP64, INT32, INT64 or BOOL)`;
          throw new GradserveError('INVALID_TENSOR', `${path}: ${message}`, { errors: [{ path: `${path}.datatype`, message }] });
        }
        dtype = d;
      }
      out[name] = { shape: shape as number[], datatype: dtype };
      continue;
    }
    checkElements(w, path, maxElements);
    out[name] = decodeTensor(w, path, { dtype: declaredDType(graph, name) });
  }
  return out;
}

/** Floating-point tensors with at least this many elements get their JSON numbers written natively. */
const NATIVE_JSON_MIN = 16;

/**
 * encodeTensor(t, 'json', unsafeInt64) for a response body serialized by stringifyBig: a large floating-point
 * tensor's numbers are written natively (native/json_format.cpp), the same text JSON.stringify would write.
 */
export function encodeJsonTensor(t: Tensor, unsafeInt64: UnsafeInt64 = 'b64'): WireTensorOut {
  if ((t.dtype === 'FP32' || t.dtype === 'FP64') && t.data.length >= NATIVE_JSON_MIN && kernels.formatJson !== undefined) {
    const text = kernels.formatJson(t.data as Float32Array | Float64Array);
    return { shape: [...t.shape], datatype: t.dtype, data: new RawJsonArray(text, () => encodeTensor(t, 'json').data ?? []) as unknown as number[] };
  }
  return encodeTensor(t, 'json', unsafeInt64);
}

/** Tensors of at least this many bytes get their base64 written natively into the reply. */
const NATIVE_B64_MIN_BYTES = 1024;

/**
 * encodeTensor(t, 'b64') for a response body serialized by stringifyBig: a large tensor's base64 is written from its
 * bytes straight into the reply (RawB64), never built as a string.
 */
export function encodeB64Tensor(t: Tensor): WireTensorOut {
  if (t.data.byteLength >= NATIVE_B64_MIN_BYTES && kernels.encodeBase64 !== undefined) {
    return { shape: [...t.shape], datatype: t.dtype, b64: new RawB64(t.data, kernels.encodeBase64) as unknown as string };
  }
  return encodeTensor(t, 'b64');
}

/** How a response writes its tensors: JSON `data`, `b64`, or binary framing (API.md "Binary framing"). */
export type ResponseEncoding = TensorEncoding | 'binary';

/** The request's `encoding` when it has one, else binary when `Accept` asks for application/octet-stream. */
export function responseEncoding(req: FastifyRequest, asked: ResponseEncoding | undefined): ResponseEncoding {
  return asked ?? (acceptsBinary(req.headers.accept) ? 'binary' : 'json');
}

/**
 * The tensors of one response, written in one encoding. In binary, each tensor's JSON is its place in the binary
 * section, and `send` writes the framed response; otherwise `send` returns the JSON body for Fastify to serialize.
 */
export class ResponseTensors {
  private readonly frame: FrameBuilder | undefined;

  constructor(readonly encoding: ResponseEncoding) {
    this.frame = encoding === 'binary' ? new FrameBuilder() : undefined;
  }

  tensor(t: Tensor): WireTensorOut | FramedTensor {
    if (this.frame !== undefined) return this.frame.tensor(t);
    return this.encoding === 'json' ? encodeJsonTensor(t) : encodeB64Tensor(t);
  }

  map(tensors: Tensors): Record<string, WireTensorOut | FramedTensor> {
    const out: Record<string, WireTensorOut | FramedTensor> = nameMap();
    for (const [k, t] of Object.entries(tensors)) out[k] = this.tensor(t);
    return out;
  }

  nested(m: Record<string, Tensors>): Record<string, Record<string, WireTensorOut | FramedTensor>> {
    const out: Record<string, Record<string, WireTensorOut | FramedTensor>> = nameMap();
    for (const [k, v] of Object.entries(m)) out[k] = this.map(v);
    return out;
  }

  /** What the handler returns: the body itself, or the reply once the framed body has been sent. */
  send<T extends object>(reply: FastifyReply, body: T): T | FastifyReply {
    return this.frame !== undefined ? sendFrame(reply, body, this.frame) : body;
  }
}

export function encodeMap(tensors: Tensors, enc: TensorEncoding): Record<string, WireTensorOut> {
  const out: Record<string, WireTensorOut> = nameMap();
  for (const [k, t] of Object.entries(tensors)) out[k] = encodeTensor(t, enc);
  return out;
}

export function encodeNested(m: Record<string, Tensors>, enc: TensorEncoding): Record<string, Record<string, WireTensorOut>> {
  const out: Record<string, Record<string, WireTensorOut>> = nameMap();
  for (const [k, v] of Object.entries(m)) out[k] = encodeMap(v, enc);
  return out;
}

/** JSON has no NaN/Infinity: gradcheck figures follow the tensor convention and become strings. */
export function jsonNumber(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}
