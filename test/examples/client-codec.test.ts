import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { base64ToBytes, bytesToBase64, decodeTensor, encodeTensor, toTensor, tensor, type WireTensor } from '../../src/client/index.js';

describe('client tensor codec', () => {
  it('b64 uses little-endian row-major bytes and round-trips FP32/FP64 exactly, non-finite included', () => {
    const f32 = new Float32Array([1, -2.5, NaN, Infinity, -Infinity, 3.4028234663852886e38, 1e-45]);
    const w = encodeTensor({ shape: [7], data: f32 }, { b64Threshold: 0 }) as { b64: string; datatype: string };
    expect(w.datatype).toBe('FP32');
    const bytes = base64ToBytes(w.b64);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(view.getFloat32(4, true)).toBe(-2.5);
    const back = decodeTensor(w).data as Float32Array;
    expect(back).toBeInstanceOf(Float32Array);
    expect(Array.from(back)).toEqual(Array.from(f32));

    const f64 = new Float64Array([Math.PI, -0, 1e-310, NaN]);
    const back64 = decodeTensor(encodeTensor(f64, { b64Threshold: 0 })).data as Float64Array;
    expect(back64).toBeInstanceOf(Float64Array);
    expect(Object.is(back64[1], -0)).toBe(true);
    expect(Array.from(back64)).toEqual(Array.from(f64));
  });

  it('the portable base64 path (atob/btoa, what browsers without Buffer use) matches the fast path', () => {
    const bytes = new Uint8Array(100_003);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 255;
    const fast = bytesToBase64(bytes);
    expect(bytesToBase64(bytes, { portable: true })).toBe(fast);
    expect(Array.from(base64ToBytes(fast, { portable: true }).subarray(0, 50))).toEqual(Array.from(bytes.subarray(0, 50)));
    expect(base64ToBytes(fast, { portable: true })).toEqual(base64ToBytes(fast));
  });

  it('small tensors travel as JSON with non-finite values as strings; large ones as b64', () => {
    const small = encodeTensor(tensor(new Float64Array([1, NaN, -Infinity]), [3]), { b64Threshold: 64 });
    expect(small).toEqual({ shape: [3], datatype: 'FP64', data: [1, 'NaN', '-Infinity'] });
    const large = encodeTensor(tensor(new Float32Array(65), [5, 13]), { b64Threshold: 64 }) as WireTensor;
    expect(large.shape).toEqual([5, 13]);
    expect(typeof large.b64).toBe('string');
    expect(large.data).toBeUndefined();
  });

  it('INT64 beyond ±2^53 is forced to b64 (JSON numbers would round it); BOOL is JSON true/false', () => {
    const big = new BigInt64Array([2n ** 60n + 1n, -3n]);
    const w = encodeTensor(big, { b64Threshold: 64 }) as WireTensor;
    expect(typeof w.b64).toBe('string');
    expect(Array.from(decodeTensor(w).data as BigInt64Array)).toEqual([2n ** 60n + 1n, -3n]);
    expect(encodeTensor(new BigInt64Array([5n]), { b64Threshold: 64 })).toEqual({ shape: [1], datatype: 'INT64', data: [5] });
    expect(encodeTensor(new Uint8Array([1, 0]), { b64Threshold: 64 })).toEqual({ shape: [2], datatype: 'BOOL', data: [true, false] });
  });

  it('decodes nested and flat JSON data, aliases and the non-finite strings', () => {
    const t = decodeTensor({ shape: [2, 2], datatype: 'float64', data: [[1, 'NaN'], ['Infinity', '-Infinity']] });
    expect(t.datatype).toBe('FP64');
    expect(Array.from(t.data as Float64Array)).toEqual([1, NaN, Infinity, -Infinity]);
    expect(decodeTensor({ shape: [], datatype: 'FP32', data: [2] }).shape).toEqual([]);
    expect(() => decodeTensor({ shape: [3], datatype: 'FP32', data: [1, 2] })).toThrow(/2 elements, shape \[3\] needs 3/);
    expect(() => decodeTensor({ shape: [1], datatype: 'FP16', data: [1] })).toThrow(/unknown datatype "FP16"/);
  });

  it('shorthand numbers and nested arrays stay shorthand (the graph declares their datatype); toTensor reads their shape', () => {
    expect(encodeTensor([[1, NaN]], { b64Threshold: 0 })).toEqual([[1, 'NaN']]);
    expect(encodeTensor(3, { b64Threshold: 0 })).toBe(3);
    const t = toTensor([[1, 2, 3], [4, 5, 6]], 'FP64');
    expect(t.shape).toEqual([2, 3]);
    expect(t.data).toBeInstanceOf(Float64Array);
    expect(() => toTensor([[1, 2], [3]])).toThrow(/ragged/);
  });

  it('rejects a datatype that contradicts the typed array', () => {
    expect(() => encodeTensor({ shape: [1], data: new Float32Array(1), datatype: 'FP64' }, { b64Threshold: 64 })).toThrow(/FP64 does not match a Float32Array/);
    expect(() => tensor(new Float32Array(5), [2, 3])).toThrow(/5 elements/);
  });

  it('src/client imports no Node module and touches no Node-only global directly (it must run in browsers)', () => {
    const dir = join(import.meta.dirname, '../../src/client');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = readFileSync(join(dir, f), 'utf8');
      const imports = [...src.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports) expect(spec, `${f} imports ${spec}`).toMatch(/^\.\.?\//);
      expect(src, `${f} uses process`).not.toMatch(/\bprocess\./);
      expect(src, `${f} uses require`).not.toMatch(/\brequire\(/);
      // Buffer only through the feature-detected `globalThis.Buffer` lookup in codec.ts (hostBuffer).
      const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      const uses = code.match(/\bBuffer\b/g)?.length ?? 0;
      const allowed = f === 'codec.ts' ? (code.match(/\{ Buffer\?: BufferLike \}\)\.Buffer/g)?.length ?? 0) * 2 : 0;
      expect(uses, `${f} uses Buffer outside the feature-detected lookup`).toBe(allowed);
    }
  });
});
