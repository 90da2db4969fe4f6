/**
 * Binary framing on the test side, written independently of src/server/framing.ts: building framed request bodies
 * from typed arrays, reading framed answers, and comparing answers of any encoding by their tensor bytes.
 */
import { expect } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';

export type Typed = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** A tensor the tests send: the datatype and shape travel in JSON, the bytes as b64, JSON data or a blob. */
export interface T {
  shape: number[];
  datatype: 'FP32' | 'FP64' | 'INT32' | 'INT64' | 'BOOL';
  data: Typed;
}

export const t = (datatype: T['datatype'], shape: number[], data: Typed): T => ({ datatype, shape, data });

export function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

const isT = (v: unknown): v is T => typeof v === 'object' && v !== null && ArrayBuffer.isView((v as T).data) && Array.isArray((v as T).shape);

/** Deep copy of `body` with every T replaced by `f(t)`. */
export function mapTensors(body: unknown, f: (t: T) => unknown): unknown {
  if (isT(body)) return f(body);
  if (Array.isArray(body)) return body.map((x) => mapTensors(x, f));
  if (typeof body === 'object' && body !== null) {
    return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, mapTensors(v, f)]));
  }
  return body;
}

/** The JSON form of `body` with every tensor as b64. */
export function asB64(body: unknown): unknown {
  return mapTensors(body, (x) => ({ shape: x.shape, datatype: x.datatype, b64: bytesOf(x.data).toString('base64') }));
}

export interface FrameOptions {
  /** Give every tensor its binary_data_offset, laying the blobs out in reverse order of the JSON text. */
  reverse?: boolean;
  /** Spaces after the JSON, to move every blob by that many bytes from its natural alignment. */
  headerPad?: number;
}

/** A framed body: every tensor becomes a binary tensor, blobs in the order of the JSON text (or reversed, with offsets). */
export function frame(body: unknown, opts: FrameOptions = {}): { payload: Buffer; headerLength: number } {
  const blobs: Buffer[] = [];
  const refs: Record<string, unknown>[] = [];
  const json = mapTensors(body, (x) => {
    const ref: Record<string, unknown> = { shape: x.shape, datatype: x.datatype, binary_data_size: x.data.byteLength };
    blobs.push(bytesOf(x.data));
    refs.push(ref);
    return ref;
  });
  const order = blobs.map((_, i) => i);
  if (opts.reverse) {
    order.reverse();
    let off = 0;
    for (const i of order) {
      refs[i]!.binary_data_offset = off;
      off += blobs[i]!.length;
    }
  }
  // The text must list tensors in the order mapTensors met them: true for JSON.stringify unless a key is integer-like.
  const header = Buffer.from(JSON.stringify(json) + ' '.repeat(opts.headerPad ?? 0));
  return { payload: Buffer.concat([header, ...order.map((i) => blobs[i]!)]), headerLength: header.length };
}

export async function postFramed(app: GradserveApp, url: string, payload: Buffer, headerLength: number | string, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST', url, payload,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength), ...headers },
  });
}

export interface Unframed {
  json: Record<string, unknown>;
  section: Buffer;
  headerLength: number;
}

/** Reads a framed answer and checks the framing rules every /v1 answer keeps. */
export function unframe(r: { headers: Record<string, unknown>; rawPayload: Buffer; statusCode: number }): Unframed {
  expect(r.statusCode, r.rawPayload.subarray(0, 500).toString()).toBe(200);
  expect(r.headers['content-type']).toBe('application/octet-stream');
  const headerLength = Number(r.headers['inference-header-content-length']);
  expect(Number.isInteger(headerLength)).toBe(true);
  expect(Number(r.headers['content-length'])).toBe(r.rawPayload.length);
  const raw = r.rawPayload;
  // The section starts 64-byte aligned in the body: the JSON is padded with spaces.
  expect(headerLength % 64).toBe(0);
  const text = raw.subarray(0, headerLength).toString('utf8');
  expect(text.trimEnd().length).toBeGreaterThan(headerLength - 64);
  const json = JSON.parse(text) as Record<string, unknown>;
  const section = raw.subarray(headerLength);
  // Every blob 64-byte aligned, zero bytes between blobs, nothing after the last one.
  const spans: [number, number][] = [];
  walkTensors(json, (o) => {
    expect(typeof o.binary_data_offset).toBe('number');
    expect(typeof o.binary_data_size).toBe('number');
    expect((o.binary_data_offset as number) % 64).toBe(0);
    spans.push([o.binary_data_offset as number, (o.binary_data_offset as number) + (o.binary_data_size as number)]);
  });
  spans.sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [s, e] of spans) {
    if (e === s) continue;
    expect(s).toBeGreaterThanOrEqual(end);
    for (let i = end; i < s; i++) expect(section[i], `padding byte ${i}`).toBe(0);
    end = e;
  }
  expect(section.length).toBe(end);
  return { json, section, headerLength };
}

function walkTensors(v: unknown, f: (o: Record<string, unknown>) => void): void {
  if (Array.isArray(v)) v.forEach((x) => walkTensors(x, f));
  else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (typeof o.datatype === 'string' && Array.isArray(o.shape) && ('b64' in o || 'binary_data_size' in o || 'data' in o)) f(o);
    else Object.values(o).forEach((x) => walkTensors(x, f));
  }
}

/** An answer with every tensor as `{shape, datatype, hex}` of its bytes, whatever its encoding (b64 or binary). */
export function normalize(json: unknown, section?: Buffer): unknown {
  if (Array.isArray(json)) return json.map((x) => normalize(x, section));
  if (typeof json !== 'object' || json === null) return json;
  const o = json as Record<string, unknown>;
  if (typeof o.datatype === 'string' && Array.isArray(o.shape)) {
    if (typeof o.b64 === 'string') return { shape: o.shape, datatype: o.datatype, hex: Buffer.from(o.b64, 'base64').toString('hex') };
    if (typeof o.binary_data_size === 'number') {
      const off = o.binary_data_offset as number;
      return { shape: o.shape, datatype: o.datatype, hex: section!.subarray(off, off + o.binary_data_size).toString('hex') };
    }
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, normalize(v, section)]));
}
