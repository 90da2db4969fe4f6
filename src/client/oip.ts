/**
 * Open Inference Protocol request/response bodies, including the Triton binary tensor data extension: a JSON header
 * followed by raw little-endian tensor bytes, its length in `Inference-Header-Content-Length`. Large tensors skip
 * JSON number formatting and parsing entirely this way, in both directions.
 */
import { decodeTensor, encodeTyped, tensorFromBytes, toTensor } from './codec.js';
import { littleEndianBytes } from './framing.js';
import type { OipInferRequest, OipInferResponse } from './types.js';

export interface InferBody {
  body: string | Uint8Array;
  headers: Record<string, string>;
}

/**
 * Inputs with more than `binaryThreshold` elements go to the binary section; `binaryOutputs` asks the server to
 * answer every output in binary too.
 */
export function buildInferBody(req: OipInferRequest, opts: { binaryThreshold: number; binaryOutputs: boolean }): InferBody {
  const chunks: Uint8Array[] = [];
  const inputs = Object.entries(req.inputs).map(([name, v]) => {
    const t = toTensor(v);
    if (t.data.length > opts.binaryThreshold) {
      const bytes = littleEndianBytes(t.data);
      chunks.push(bytes);
      return { name, shape: t.shape, datatype: t.datatype, parameters: { binary_data_size: bytes.byteLength } };
    }
    const w = encodeTyped(t.shape, t.datatype, t.data, { b64Threshold: Infinity });
    return { name, shape: w.shape, datatype: w.datatype, data: w.data };
  });
  const outputs = req.outputs?.map((x) => (typeof x === 'string' ? { name: x } : x));
  const parameters = opts.binaryOutputs ? { ...req.parameters, binary_data_output: true } : req.parameters;
  const header = JSON.stringify({ id: req.id, parameters, inputs, outputs });
  if (chunks.length === 0) return { body: header, headers: { 'content-type': 'application/json' } };

  const head = new TextEncoder().encode(header);
  const total = chunks.reduce((n, c) => n + c.byteLength, head.byteLength);
  const body = new Uint8Array(total);
  body.set(head, 0);
  let off = head.byteLength;
  for (const c of chunks) {
    body.set(c, off);
    off += c.byteLength;
  }
  return {
    body,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.byteLength) },
  };
}

interface WireOutput {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown[];
  parameters?: { binary_data_size?: number };
}

/** Parse an infer answer: plain JSON, or a JSON header of `headerLength` bytes followed by binary outputs in order. */
export function parseInferResponse(bytes: Uint8Array, headerLength: string | null): OipInferResponse {
  const n = headerLength === null ? bytes.byteLength : Number(headerLength);
  if (!Number.isInteger(n) || n < 0 || n > bytes.byteLength) {
    throw new RangeError(`Inference-Header-Content-Length ${headerLength} does not fit a body of ${bytes.byteLength} bytes`);
  }
  const r = JSON.parse(new TextDecoder().decode(bytes.subarray(0, n))) as Record<string, unknown>;
  let off = n;
  const outputs = Object.create(null) as OipInferResponse['outputs'];
  for (const o of (r.outputs ?? []) as WireOutput[]) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) {
      outputs[o.name] = decodeTensor(o);
      continue;
    }
    if (off + size > bytes.byteLength) throw new RangeError(`output "${o.name}": binary_data_size ${size} runs past the body`);
    const raw = bytes.subarray(off, off + size); // tensorFromBytes copies when the view is misaligned
    off += size;
    outputs[o.name] = tensorFromBytes(o.shape, o.datatype, raw);
  }
  return {
    modelName: String(r.model_name),
    modelVersion: r.model_version === undefined ? undefined : String(r.model_version),
    id: r.id === undefined ? undefined : String(r.id),
    outputs,
  };
}
