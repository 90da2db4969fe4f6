/**
 * The safetensors format (weights beside a repository model, API.md "Models by reference"): 8 bytes of little-endian
 * header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then
 * the raw little-endian row-major bytes, offsets counted from the end of the header. No npm package for it is kept
 * up, and the format is this small, so it is read and written here.
 *
 * Reading keeps every tensor a view of the one file buffer when its offset suits its element size (writers pad the
 * header and order the tensors so that it does), else copies that tensor once: weights are held once, never per request.
 */
import { BYTES_PER_ELEMENT, type DType, type TypedArray } from './dtype.js';
import { numel, type Tensor } from './tensor.js';

/** safetensors dtype names <-> gradserve datatypes (only the five gradserve has). */
const FROM_ST: Record<string, DType> = { F32: 'FP32', F64: 'FP64', I32: 'INT32', I64: 'INT64', BOOL: 'BOOL' };
const TO_ST: Record<DType, string> = { FP32: 'F32', FP64: 'F64', INT32: 'I32', INT64: 'I64', BOOL: 'BOOL' };

/** A file that is not valid safetensors; the message says what and where. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;

function viewOf(dtype: DType, bytes: Uint8Array): TypedArray {
  const n = bytes.byteLength / BYTES_PER_ELEMENT[dtype];
  const aligned = bytes.byteOffset % BYTES_PER_ELEMENT[dtype] === 0;
  // A copy (Buffer#slice would be a view again).
  const src = aligned ? bytes : new Uint8Array(bytes);
  switch (dtype) {
    case 'FP32': return new Float32Array(src.buffer, src.byteOffset, n);
    case 'FP64': return new Float64Array(src.buffer, src.byteOffset, n);
    case 'INT32': return new Int32Array(src.buffer, src.byteOffset, n);
    case 'INT64': return new BigInt64Array(src.buffer, src.byteOffset, n);
    case 'BOOL': {
      // Any non-zero byte is true; gradserve holds BOOL as 0/1.
      let clean = true;
      for (let i = 0; i < src.length; i++) if (src[i]! > 1) { clean = false; break; }
      if (clean) return new Uint8Array(src.buffer, src.byteOffset, n);
      return Uint8Array.from(src, (b) => (b === 0 ? 0 : 1));
    }
  }
}

/** Parses a safetensors file: its tensors (views of `buf`) in header order, and its `__metadata__`. */
export function readSafetensors(buf: Uint8Array): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  if (buf.byteLength < 8) throw new SafetensorsError(`the file has ${buf.byteLength} bytes, fewer than the 8 of its header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, buf.byteLength - 8))) {
    throw new SafetensorsError(`header length ${n} is beyond the ${buf.byteLength - 8} bytes that follow it`);
  }
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, Number(n)).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(`the header is not JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError('the header is not a JSON object');
  const data = buf.subarray(headerEnd);
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry === 'object' && entry !== null) metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new SafetensorsError(`tensor "${name}": its entry is not an object`);
    const dtype = typeof e.dtype === 'string' ? FROM_ST[e.dtype] : undefined;
    if (dtype === undefined) {
      throw new SafetensorsError(`tensor "${name}": dtype ${JSON.stringify(e.dtype)} is not one of F32, F64, I32, I64, BOOL`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1] || off[1] > data.length) {
      throw new SafetensorsError(`tensor "${name}": data_offsets ${JSON.stringify(off)} do not lie within the ${data.length} data bytes`);
    }
    const shape = e.shape as number[];
    const want = numel(shape) * BYTES_PER_ELEMENT[dtype];
    if (off[1] - off[0] !== want) {
      throw new SafetensorsError(`tensor "${name}": ${off[1] - off[0]} bytes for ${dtype === 'BOOL' ? 'BOOL' : TO_ST[dtype]} shape [${shape.join(', ')}], which needs ${want}`);
    }
    spans.push([off[0], off[1], name]);
    tensors.set(name, { dtype, shape, data: viewOf(dtype, data.subarray(off[0], off[1])) });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) throw new SafetensorsError(`tensors "${spans[i - 1]![2]}" and "${spans[i]![2]}" overlap`);
  }
  return { tensors, metadata };
}

/**
 * Writes tensors as a safetensors file. As the reference writer does, tensors go in order of decreasing element size
 * (then name), back to back, and the header is padded with spaces to a multiple of 8 bytes: every tensor is aligned.
 */
export function writeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  const order = Object.entries(tensors).sort(([an, a], [bn, b]) => BYTES_PER_ELEMENT[b.dtype] - BYTES_PER_ELEMENT[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0));
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of order) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: TO_ST[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json, 'utf8'), ...parts]);
}
