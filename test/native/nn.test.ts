/**
 * Pooling and row-normalization kernels against naive references: random geometries over 1-3 spatial axes (padding,
 * dilation, ceil_mode, count_include_pad), the gather/scatter and avg/backward pairs as exact transposes, PyTorch's
 * tie and NaN rules, and argument errors.
 */
import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { FloatArray } from '../../src/kernels.types.js';
import { rng } from '../support/random.js';
import { fromTyped, mismatch, numel, randData, randInt, toTyped, unravel } from './reference.js';

interface Geometry {
  shape: number[];
  kernel: number[];
  strides: number[];
  pads: [number, number][];
  dilations: number[];
  ceil: boolean;
}

/** The positions (flat, within one plane) each window reads, and the avg divisors; PyTorch's output-size rule. */
function windows(g: Geometry, countIncludePad: boolean): { out: number[]; reads: number[][]; divisors: number[] } {
  const sp = g.kernel.length;
  const spatial = g.shape.slice(2);
  const out = spatial.map((n, i) => {
    const span = n + g.pads[i]![0] + g.pads[i]![1] - ((g.kernel[i]! - 1) * g.dilations[i]! + 1);
    let o = Math.floor((g.ceil ? span + g.strides[i]! - 1 : span) / g.strides[i]!) + 1;
    if (g.ceil && (o - 1) * g.strides[i]! >= n + g.pads[i]![0]) o--;
    return o;
  });
  const reads: number[][] = [];
  const divisors: number[] = [];
  for (let w = 0; w < numel(out); w++) {
    const o = unravel(w, out);
    const starts = o.map((v, i) => v * g.strides[i]! - g.pads[i]![0]);
    const list: number[] = [];
    for (let j = 0; j < numel(g.kernel); j++) {
      const jj = unravel(j, g.kernel);
      const pos = jj.map((v, i) => starts[i]! + v * g.dilations[i]!);
      if (pos.every((p, i) => p >= 0 && p < spatial[i]!)) list.push(pos.reduce((acc, p, i) => acc * spatial[i]! + p, 0));
    }
    reads.push(list);
    const full = starts.reduce((acc, s, i) => acc * (Math.min(s + g.kernel[i]!, spatial[i]! + g.pads[i]![1]) - s), 1);
    divisors.push(countIncludePad ? full : list.length);
  }
  expect(out.length).toBe(sp);
  return { out: [g.shape[0]!, g.shape[1]!, ...out], reads, divisors };
}

function randGeometry(r: () => number, dilate: boolean): Geometry {
  const sp = randInt(r, 1, 3);
  const kernel = Array.from({ length: sp }, () => randInt(r, 1, 3));
  const dilations = kernel.map(() => (dilate ? randInt(r, 1, 2) : 1));
  const pads = kernel.map((k): [number, number] => [randInt(r, 0, k - 1), randInt(r, 0, k - 1)]);
  const spatial = kernel.map((k, i) => Math.max(1, (k - 1) * dilations[i]! + 1 - pads[i]![0] - pads[i]![1]) + randInt(r, 0, 4));
  return {
    shape: [randInt(r, 1, 2), randInt(r, 1, 3), ...spatial],
    kernel,
    strides: kernel.map(() => randInt(r, 1, 3)),
    pads,
    dilations,
    ceil: r() < 0.5,
  };
}

function maxRef(x: number[], g: Geometry): { y: number[]; picks: number[] } {
  const { out, reads } = windows(g, false);
  const plane = numel(g.shape.slice(2));
  const y: number[] = [];
  const picks: number[] = [];
  for (let p = 0; p < g.shape[0]! * g.shape[1]!; p++) {
    for (const list of reads) {
      let best = -Infinity;
      let at = list.length > 0 ? list[0]! : -1;
      for (const pos of list) {
        const v = x[p * plane + pos]!;
        if (v > best || Number.isNaN(v)) {
          best = v;
          at = pos;
        }
      }
      y.push(best);
      picks.push(at < 0 ? -1 : p * plane + at);
    }
  }
  expect(y.length).toBe(numel(out));
  return { y, picks };
}

function avgRef(x: number[], g: Geometry, cip: boolean): number[] {
  const { reads, divisors } = windows(g, cip);
  const plane = numel(g.shape.slice(2));
  const y: number[] = [];
  for (let p = 0; p < g.shape[0]! * g.shape[1]!; p++) {
    reads.forEach((list, w) => y.push(list.reduce((s, pos) => s + x[p * plane + pos]!, 0) / divisors[w]!));
  }
  return y;
}

const dot = (a: FloatArray, b: FloatArray): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const maxArgs = (g: Geometry): [number[], number[], [number, number][], number[], boolean] => [g.kernel, g.strides, g.pads, g.dilations, g.ceil];
const avgArgs = (g: Geometry, cip: boolean): [number[], number[], [number, number][], boolean, boolean] => [g.kernel, g.strides, g.pads, g.ceil, cip];
const invalid = (msg: RegExp) => expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(msg) });

describe('max pooling', () => {
  it('matches the reference on random geometries, and gather/scatter are transposes', () => {
    const r = rng(11);
    for (let trial = 0; trial < 120; trial++) {
      const g = randGeometry(r, true);
      const dtype = trial % 2 === 0 ? 'FP64' : 'FP32';
      const x = randData(r, numel(g.shape), dtype);
      const xs = toTyped(dtype, x) as FloatArray;
      const { y, picks } = maxRef(x, g);
      const label = JSON.stringify(g);
      expect(mismatch(kernels.maxPool(xs, g.shape, ...maxArgs(g)), y), label).toBeUndefined();
      const h = toTyped(dtype, randData(r, x.length, dtype)) as FloatArray;
      const gathered = kernels.maxPoolGather(h, xs, g.shape, ...maxArgs(g));
      expect(mismatch(gathered, picks.map((p) => (p < 0 ? 0 : h[p]!))), label).toBeUndefined();
      const cot = toTyped(dtype, randData(r, y.length, dtype)) as FloatArray;
      const scattered = kernels.maxPoolScatter(cot, xs, g.shape, ...maxArgs(g));
      expect(scattered.length).toBe(x.length);
      expect(dot(gathered, cot)).toBeCloseTo(dot(h, scattered), dtype === 'FP64' ? 10 : 3);
    }
  });

  it('matches the reference on 2-D windows without dilation (blocks of whole windows, edges beside them), with ties, NaNs and padding', () => {
    // native/pool.cpp takes windows wholly inside the input in blocks of 64 (2x2/2, 3x3/1, 3x3/2 fixed at compile time,
    // other sizes at run time) and the windows that reach the padding one at a time
    const r = rng(12);
    const geometries: Geometry[] = [
      { shape: [3, 2, 28, 28], kernel: [2, 2], strides: [2, 2], pads: [[0, 0], [0, 0]], dilations: [1, 1], ceil: false },
      { shape: [3, 2, 10, 9], kernel: [2, 2], strides: [2, 2], pads: [[1, 0], [0, 1]], dilations: [1, 1], ceil: true },
      { shape: [1, 2, 6, 150], kernel: [2, 2], strides: [2, 2], pads: [[0, 0], [0, 0]], dilations: [1, 1], ceil: false },
      { shape: [2, 2, 7, 131], kernel: [2, 2], strides: [2, 2], pads: [[0, 0], [1, 1]], dilations: [1, 1], ceil: true },
      { shape: [2, 3, 9, 11], kernel: [3, 3], strides: [1, 1], pads: [[1, 1], [1, 1]], dilations: [1, 1], ceil: false },
      { shape: [2, 3, 12, 13], kernel: [3, 3], strides: [2, 2], pads: [[1, 1], [1, 1]], dilations: [1, 1], ceil: false },
      { shape: [1, 2, 8, 9], kernel: [2, 3], strides: [1, 2], pads: [[0, 1], [2, 0]], dilations: [1, 1], ceil: true },
      { shape: [1, 1, 5, 5], kernel: [1, 1], strides: [2, 2], pads: [[0, 0], [0, 0]], dilations: [1, 1], ceil: false },
      { shape: [1, 2, 6, 6], kernel: [3, 1], strides: [1, 1], pads: [[1, 1], [0, 0]], dilations: [1, 1], ceil: false },
      { shape: [1, 1, 2, 2], kernel: [2, 2], strides: [3, 3], pads: [[2, 1], [0, 0]], dilations: [1, 1], ceil: false },
      { shape: [2, 3, 7, 9], kernel: [3, 2], strides: [2, 3], pads: [[1, 1], [0, 1]], dilations: [1, 1], ceil: true },
      { shape: [1, 2, 5, 6], kernel: [3, 3], strides: [1, 1], pads: [[1, 1], [1, 1]], dilations: [1, 1], ceil: false },
      { shape: [2, 2, 11], kernel: [4], strides: [3], pads: [[2, 1]], dilations: [1], ceil: true },
      { shape: [1, 2, 1, 4, 5], kernel: [1, 2, 2], strides: [1, 2, 2], pads: [[0, 0], [0, 1], [1, 0]], dilations: [1, 1, 1], ceil: false },
    ];
    for (const g of geometries)
      for (const dtype of ['FP64', 'FP32'] as const) {
        // small integers: many ties; a few NaNs and -Infinity
        const x = randData(r, numel(g.shape), dtype).map((v, i) => (i % 37 === 5 ? NaN : i % 41 === 3 ? -Infinity : Math.round(v)));
        const xs = toTyped(dtype, x) as FloatArray;
        const { y, picks } = maxRef(x, g);
        const label = `${dtype} ${JSON.stringify(g)}`;
        expect(mismatch(kernels.maxPool(xs, g.shape, ...maxArgs(g)), y), label).toBeUndefined();
        const h = toTyped(dtype, randData(r, x.length, dtype)) as FloatArray;
        const gathered = kernels.maxPoolGather(h, xs, g.shape, ...maxArgs(g));
        expect(mismatch(gathered, picks.map((p) => (p < 0 ? 0 : h[p]!))), label).toBeUndefined();
        const cot = toTyped(dtype, randData(r, y.length, dtype)) as FloatArray;
        const scattered = fromTyped(kernels.maxPoolScatter(cot, xs, g.shape, ...maxArgs(g)));
        const want = new Array<number>(x.length).fill(0);
        picks.forEach((p, w) => {
          if (p >= 0) want[p]! += cot[w]!; // picks are flat indices into x
        });
        expect(mismatch(Float64Array.from(scattered), want, 1e-6, 1e-6), label).toBeUndefined();
      }
  });

  it('picks the first maximum of a tie in row-major window order, lets NaN win, and gives -Infinity to a window of padding only', () => {
    const tie = kernels.maxPoolScatter(new Float64Array([1]), new Float64Array([2, 5, 5, 5]), [1, 1, 2, 2], [2, 2], [2, 2], [[0, 0], [0, 0]], [1, 1], false);
    expect(fromTyped(tie)).toEqual([0, 1, 0, 0]);
    const nan = kernels.maxPool(new Float64Array([1, NaN, 3]), [1, 1, 3], [3], [3], [[0, 0]], [1], false);
    expect(Number.isNaN(nan[0])).toBe(true);
    // in = 1, kernel 2 dilated by 2, pads [1, 1]: the one window reads positions -1 and 1, neither inside the input
    const args: [number[], number[], number[], [number, number][], number[], boolean] = [[1, 1, 1], [2], [1], [[1, 1]], [2], false];
    expect(fromTyped(kernels.maxPool(new Float64Array([4]), ...args))).toEqual([-Infinity]);
    expect(fromTyped(kernels.maxPoolScatter(new Float64Array([7]), new Float64Array([4]), ...args))).toEqual([0]);
    expect(fromTyped(kernels.maxPoolGather(new Float64Array([3]), new Float64Array([4]), ...args))).toEqual([0]);
    const allNegInf = kernels.maxPoolScatter(new Float32Array([1]), new Float32Array([-Infinity, -Infinity]), [1, 1, 2], [2], [2], [[0, 0]], [1], false);
    expect(fromTyped(allNegInf)).toEqual([1, 0]);
  });
});

describe('average pooling', () => {
  it('matches the reference on random geometries with and without count_include_pad; backward is the transpose', async () => {
    const r = rng(12);
    for (let trial = 0; trial < 120; trial++) {
      const g = randGeometry(r, false);
      const cip = r() < 0.5;
      const dtype = trial % 2 === 0 ? 'FP64' : 'FP32';
      const x = randData(r, numel(g.shape), dtype);
      const xs = toTyped(dtype, x) as FloatArray;
      const y = kernels.avgPool(xs, g.shape, ...avgArgs(g, cip));
      expect(mismatch(y, avgRef(x, g, cip), dtype === 'FP64' ? 1e-12 : 1e-6, 1e-6), JSON.stringify({ ...g, cip })).toBeUndefined();
      const cot = toTyped(dtype, randData(r, y.length, dtype)) as FloatArray;
      const back = await kernels.async.avgPoolBackward(cot, g.shape, ...avgArgs(g, cip));
      expect(back.length).toBe(x.length);
      expect(dot(y, cot)).toBeCloseTo(dot(xs, back), dtype === 'FP64' ? 10 : 3);
    }
  });

  it('never counts the positions ceil_mode adds beyond the declared pads', () => {
    // in 6, kernel 3, stride 2, pads [1, 1], ceil: windows start at -1, 1, 3, 5; the last covers 5, 6 (pad), 7 (beyond)
    const x = new Float64Array([1, 2, 3, 4, 5, 6]);
    expect(fromTyped(kernels.avgPool(x, [1, 1, 6], [3], [2], [[1, 1]], true, true))).toEqual([1, 3, 5, 3]);
    expect(fromTyped(kernels.avgPool(x, [1, 1, 6], [3], [2], [[1, 1]], true, false))).toEqual([1.5, 3, 5, 6]);
  });
});

describe('normalize', () => {
  it('normalizes each row over the trailing axes, centred or by the root mean square', () => {
    const r = rng(13);
    for (const dtype of ['FP64', 'FP32'] as const) {
      for (const [shape, axis] of [[[3, 4], 1], [[2, 3, 4], 1], [[5], 0], [[2, 0, 3], 1], [[2, 3], 2]] as [number[], number][]) {
        const x = randData(r, numel(shape), dtype);
        for (const center of [true, false]) {
          const cols = numel(shape.slice(axis));
          const want: number[] = [];
          for (let row = 0; row * cols < x.length; row++) {
            const v = x.slice(row * cols, (row + 1) * cols);
            const mean = center ? v.reduce((s, a) => s + a, 0) / cols : 0;
            const inv = 1 / Math.sqrt(v.reduce((s, a) => s + (a - mean) ** 2, 0) / cols + 1e-5);
            want.push(...v.map((a) => (a - mean) * inv));
          }
          const got = kernels.normalize(toTyped(dtype, x) as FloatArray, shape, axis, 1e-5, center);
          expect(mismatch(got, want, dtype === 'FP64' ? 1e-12 : 1e-6, 1e-6), `${shape} axis ${axis}`).toBeUndefined();
        }
      }
    }
  });
});

describe('argument errors', () => {
  const x = new Float64Array(16);
  it('names what is wrong', () => {
    expect(() => kernels.maxPool(x, [1, 1, 16], [2, 2], [2, 2], [[0, 0], [0, 0]], [1, 1], false)).toThrow(invalid(/must have rank 4/));
    expect(() => kernels.maxPool(x, [1, 1, 4, 4], [5, 1], [1, 1], [[0, 0], [0, 0]], [1, 1], false)).toThrow(invalid(/kernel extent 5 is larger than the padded input 4/));
    expect(() => kernels.maxPool(x, [1, 1, 4, 4], [2, 2], [0, 1], [[0, 0], [0, 0]], [1, 1], false)).toThrow(invalid(/strides\[0\] = 0/));
    expect(() => kernels.maxPool(x, [1, 1, 16], [2], [2], [[0, 0]], [1, 1], false)).toThrow(invalid(/one entry per spatial axis/));
    expect(() => kernels.maxPool(new Int32Array(16) as unknown as FloatArray, [1, 1, 16], [2], [2], [[0, 0]], [1], false)).toThrow(invalid(/does not accept INT32/));
    expect(() => kernels.maxPoolGather(new Float32Array(16), x, [1, 1, 16], [2], [2], [[0, 0]], [1], false)).toThrow(invalid(/share a datatype/));
    expect(() => kernels.maxPoolScatter(new Float64Array(3), x, [1, 1, 16], [2], [2], [[0, 0]], [1], false)).toThrow(invalid(/g has 3 elements/));
    expect(() => kernels.avgPoolBackward(new Float64Array(3), [1, 1, 16], [2], [2], [[0, 0]], false, false)).toThrow(invalid(/g has 3 elements/));
    expect(() => kernels.avgPool(x, [1, 1, 16], [2 ** 50], [1], [[0, 0]], false, false)).toThrow(invalid(/kernel\[0\]/));
    expect(() => kernels.normalize(x, [4, 4], 3, 1e-5, true)).toThrow(invalid(/axis 3 is out of range/));
    expect(() => kernels.normalize(x, [4, 4], 1, -1, true)).toThrow(invalid(/epsilon/));
  });

  it('survives huge and empty geometries', () => {
    // a zero-size spatial axis beside huge N and C: no windows, no loop over N * C
    expect(kernels.avgPool(new Float64Array(0), [2 ** 40, 2 ** 40, 0], [1], [1], [[0, 1]], true, false).length).toBe(0);
    expect(() => kernels.maxPool(new Float64Array(0), [2 ** 40, 2 ** 40, 0], [2], [1], [[1, 1]], [1], false)).toThrow(invalid(/too many elements/));
    expect(() => kernels.maxPool(x, [1, 1, 16], [2 ** 30], [1], [[0, 0]], [2 ** 30], false)).toThrow(invalid(/too large/));
  });
});
