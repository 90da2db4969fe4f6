/** The pieces of binary framing on their own: blob layout, Accept negotiation, the frame builder, text order. */
import { describe, expect, it } from 'vitest';
import { binaryTensorsInTextOrder } from '../../src/server/binary_tensors.js';
import { acceptsBinary, type BlobRef, FrameBuilder, layoutBlobs } from '../../src/server/framing.js';
import { failure } from '../support/errors.js';

const ref = (label: string, size: unknown, offset?: unknown): BlobRef => ({ label, sizePath: `${label}.binary_data_size`, offsetPath: `${label}.binary_data_offset`, size, offset });

describe('layoutBlobs', () => {
  it('places blobs back to back in the given order, or at their offsets, and zero-size blobs anywhere', () => {
    expect(layoutBlobs([ref('a', 4), ref('b', 8), ref('c', 0)], 12)).toEqual([{ start: 0, end: 4 }, { start: 4, end: 12 }, { start: 12, end: 12 }]);
    expect(layoutBlobs([ref('a', 4, 8), ref('b', 8, 0)], 12)).toEqual([{ start: 8, end: 12 }, { start: 0, end: 8 }]);
    // Without an offset, a blob follows the one before it in the list, wherever that one is.
    expect(layoutBlobs([ref('a', 4, 8), ref('b', 4), ref('c', 8, 0)], 16)).toEqual([{ start: 8, end: 12 }, { start: 12, end: 16 }, { start: 0, end: 8 }]);
    expect(layoutBlobs([ref('a', 0, 0), ref('b', 4)], 4)).toEqual([{ start: 0, end: 0 }, { start: 0, end: 4 }]);
    expect(layoutBlobs([], 0)).toEqual([]);
  });

  it('refuses what is not a byte count, blobs past the end, overlaps and unclaimed bytes, with the path at fault', async () => {
    for (const size of [-1, 1.5, '4', null, 2 ** 53]) {
      const e = await failure(() => layoutBlobs([ref('a', size)], 4));
      expect(e.code).toBe('INVALID_TENSOR');
      expect(e.errors?.[0]?.path).toBe('a.binary_data_size');
    }
    expect((await failure(() => layoutBlobs([ref('a', 4, -4)], 4))).errors?.[0]?.path).toBe('a.binary_data_offset');
    expect((await failure(() => layoutBlobs([ref('a', 4), ref('b', 4)], 6))).errors?.[0]).toEqual({ path: 'b.binary_data_size', message: expect.stringMatching(/bytes 4 to 8 run past the binary section of 6 bytes/) });
    const overlap = await failure(() => layoutBlobs([ref('a', 8, 0), ref('b', 4, 4)], 8));
    expect(overlap.detail).toBe('b: bytes 4 to 8 overlap bytes 0 to 8 of a');
    expect(overlap.errors?.[0]?.path).toBe('b.binary_data_offset');
    expect((await failure(() => layoutBlobs([ref('a', 4, 0), ref('b', 4, 6)], 10))).detail).toBe('b: bytes 4 to 6 of the binary section belong to no tensor');
    expect((await failure(() => layoutBlobs([ref('a', 4)], 6))).errors?.[0]).toEqual({ path: 'a.binary_data_size', message: 'bytes 4 to 6 of the binary section belong to no tensor' });
    expect((await failure(() => layoutBlobs([], 3))).errors?.[0]?.path).toBe('(body)');
  });
});

describe('acceptsBinary', () => {
  it('is true only when application/octet-stream is named and not less wanted than JSON', () => {
    expect(acceptsBinary(undefined)).toBe(false);
    expect(acceptsBinary('application/octet-stream')).toBe(true);
    expect(acceptsBinary('application/octet-stream, application/problem+json')).toBe(true);
    expect(acceptsBinary('Application/Octet-Stream')).toBe(true);
    expect(acceptsBinary('application/json, application/octet-stream')).toBe(true);
    expect(acceptsBinary('application/json, application/octet-stream;q=0.8')).toBe(false);
    expect(acceptsBinary('application/json;q=0.2, application/octet-stream; q=0.8')).toBe(true);
    expect(acceptsBinary('application/octet-stream;q=0')).toBe(false);
    expect(acceptsBinary('*/*')).toBe(false);
    expect(acceptsBinary('application/*, application/octet-stream;q=0.5')).toBe(false);
  });
});

describe('FrameBuilder', () => {
  it('views the tensors\' own bytes, aligns them with shared zero padding, and pads the header with spaces', () => {
    const a = new Float32Array([1, 2, 3]);
    const b = new Float64Array(new ArrayBuffer(32), 8, 2);
    b.set([4, 5]);
    const f = new FrameBuilder();
    expect(f.tensor({ dtype: 'FP32', shape: [3], data: a })).toEqual({ shape: [3], datatype: 'FP32', binary_data_offset: 0, binary_data_size: 12 });
    expect(f.add({ dtype: 'FP64', shape: [0], data: new Float64Array(0) })).toEqual({ binary_data_offset: 0, binary_data_size: 0 });
    expect(f.add({ dtype: 'FP64', shape: [2], data: b })).toEqual({ binary_data_offset: 64, binary_data_size: 16 });
    expect(f.byteLength).toBe(80);
    const parts = f.parts({ k: 'v' });
    expect(parts.map((p) => p.byteLength)).toEqual([64, 12, 52, 16]);
    expect(Buffer.from(parts[0]!).toString()).toBe('{"k":"v"}'.padEnd(64));
    // No copies: the blobs are views of the tensors' buffers.
    expect(parts[1]!.buffer).toBe(a.buffer);
    expect(parts[3]!.buffer).toBe(b.buffer);
    expect(parts[3]!.byteOffset).toBe(8);
    expect(Array.from(parts[2]!)).toEqual(new Array(52).fill(0));
    // The OIP form: back to back, header as it is.
    const oip = new FrameBuilder(1);
    oip.add({ dtype: 'FP32', shape: [3], data: a });
    expect(oip.add({ dtype: 'FP64', shape: [2], data: b }).binary_data_offset).toBe(12);
    expect(oip.parts({ k: 'v' })[0]!.byteLength).toBe(9);
  });
});

describe('binaryTensorsInTextOrder', () => {
  it('lists tensor objects with binary_data_size in the order of the text, integer-like keys and escapes included', () => {
    const text = String.raw`{"inputs": {"b": {"binary_data_size": 4}, "1": {"shape": [], "binary_data_size": 4}, "0": {"binary_data_size": 4, "x": "}\"{"}},
      "graph": {"nodes": [{"attrs": {"binary_data_size": 1}}], "constants": {"c\u0031": {"datatype": "FP32", "binary_data_size": 8}}},
      "cotangents": {"y": {"data": [1, [2, {"binary_data_size": 3}]]}}, "vectors": {"v": {"binary_data_size": 0}}, "tangents": [{"binary_data_size": 2}]}`;
    const order = binaryTensorsInTextOrder(Buffer.from(text));
    expect(order).toEqual([['inputs', 'b'], ['inputs', '1'], ['inputs', '0'], ['graph', 'constants', 'c1'], ['vectors', 'v']]);
    const parsed = JSON.parse(text) as { inputs: Record<string, unknown> };
    expect(Object.keys(parsed.inputs)).toEqual(['0', '1', 'b']); // what the text order is needed for
  });

  it('reports a key given twice twice', () => {
    expect(binaryTensorsInTextOrder(Buffer.from('{"inputs": {"x": {"binary_data_size": 1}, "x": {"binary_data_size": 1}}}'))).toEqual([['inputs', 'x'], ['inputs', 'x']]);
  });
});
