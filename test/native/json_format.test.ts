/**
 * formatJson (native/json_format.cpp): the JSON text of FP32/FP64 values, byte for byte what JSON.stringify writes
 * for the same doubles, with the wire's strings for non-finite values.
 */
import { describe, expect, test } from 'vitest';
import { kernels } from '../../src/kernels.js';
import { rng } from '../support/random.js';

const wire = (v: number): number | string => (Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');
const reference = (a: Float32Array | Float64Array): string => JSON.stringify(Array.from(a, wire));
const native = (a: Float32Array | Float64Array): string => kernels.formatJson!(a).toString('latin1');

const EDGES = [
  0, -0, 1, -1, 0.1, -0.1, 1 / 3, 100, 123.456, 1e-5, 1e-6, 1.5e-6, 1e-7, 1.5e-7, 1e20, 1e21, 1.2e21, 9.999999999999999e20,
  123456789012345680000, 2 ** 53, 2 ** 53 + 2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 3.4028234663852886e38,
  1.1754943508222875e-38, 1.401298464324817e-45, NaN, Infinity, -Infinity,
];

describe('formatJson', () => {
  test('edge values: notation switches, extremes, signed zero, non-finite', () => {
    expect(native(Float64Array.from(EDGES))).toBe(reference(Float64Array.from(EDGES)));
    expect(native(Float32Array.from(EDGES))).toBe(reference(Float32Array.from(EDGES)));
    expect(native(new Float32Array(0))).toBe('[]');
    expect(native(Float64Array.of(-0))).toBe('[0]');
  });

  test('random bit patterns (every exponent, subnormals, NaN payloads) and random magnitudes', () => {
    const r = rng(77);
    const bits = new Uint32Array(2 * 50_000);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(r() * 2 ** 32) >>> 0;
    const f64 = new Float64Array(bits.buffer);
    const f32 = new Float32Array(bits.buffer);
    expect(native(f64)).toBe(reference(f64));
    expect(native(f32)).toBe(reference(f32));
    const mags = Float64Array.from({ length: 50_000 }, () => (r() - 0.5) * 10 ** Math.floor(r() * 60 - 30));
    expect(native(mags)).toBe(reference(mags));
    expect(native(Float32Array.from(mags))).toBe(reference(Float32Array.from(mags)));
  });

  test('other datatypes are refused with a clear error', () => {
    expect(() => kernels.formatJson!(new Int32Array(3) as unknown as Float32Array)).toThrow(/Float32Array or Float64Array/);
  });
});
