/**
 * Max pooling's kernels (maxPool, maxPoolGather, maxPoolScatter) against a direct loop over the definition: the first
 * maximum of each window in row-major window order, a NaN winning (the last one seen), -Infinity and index -1 for a
 * window of padding only. The shapes reach every path of native/pool.cpp: the windows wholly inside the input of 2-D
 * pooling (2x2 stride 2, 3x3 stride 1 and 2, other sizes), the edge windows beside them (padding, ceil mode), and
 * dilated and 1-D / 3-D windows; the data holds ties, NaN and -Infinity.
 */
import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { FloatArray } from '../../src/kernels.types.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import { numel, randInt, toTyped } from './reference.js';

interface Case {
  shape: number[];
  kernel: number[];
  strides: number[];
  pads: [number, number][];
  dilations: number[];
  ceil: boolean;
}

/** Output length of one axis (as planPool). */
function outLen(n: number, k: number, s: number, p: [number, number], d: number, ceil: boolean): number {
  const span = n + p[0] + p[1] - ((k - 1) * d + 1);
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= n + p[0]) out--;
  return out;
}

/** Per window: the picked index within the plane (-1: none) and its value, by the definition. */
function reference(x: ArrayLike<number>, c: Case): { shape: number[]; idx: number[]; val: number[] } {
  const sp = c.kernel.length;
  const ins = c.shape.slice(2);
  const outs = ins.map((n, i) => outLen(n, c.kernel[i]!, c.strides[i]!, c.pads[i]!, c.dilations[i]!, c.ceil));
  const planes = c.shape[0]! * c.shape[1]!;
  const inPlane = numel(ins), outPlane = numel(outs);
  const idx: number[] = [], val: number[] = [];
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < outPlane; o++) {
      const oi: number[] = [];
      for (let a = sp - 1, r = o; a >= 0; a--) oi[a] = r % outs[a]!, (r = Math.floor(r / outs[a]!));
      let best = -Infinity, at = -1;
      for (let t = 0; t < numel(c.kernel); t++) {
        const ti: number[] = [];
        for (let a = sp - 1, r = t; a >= 0; a--) ti[a] = r % c.kernel[a]!, (r = Math.floor(r / c.kernel[a]!));
        const pos = oi.map((v, a) => v * c.strides[a]! - c.pads[a]![0] + ti[a]! * c.dilations[a]!);
        if (pos.some((v, a) => v < 0 || v >= ins[a]!)) continue;
        const flat = pos.reduce((f, v, a) => f * ins[a]! + v, 0);
        const v = x[p * inPlane + flat]!;
        if (at < 0) at = flat;
        if (v > best || Number.isNaN(v)) (best = v), (at = flat);
      }
      idx.push(at < 0 ? -1 : p * inPlane + at);
      val.push(best);
    }
  }
  return { shape: [c.shape[0]!, c.shape[1]!, ...outs], idx, val };
}

const cases: Case[] = [
  // the fast paths: whole windows of 2x2/2, 3x3/1, 3x3/2 and 2x3/1, with and without edges beside them
  { shape: [2, 3, 28, 28], kernel: [2, 2], strides: [2, 2], pads: [[0, 0], [0, 0]], dilations: [1, 1], ceil: false },
  { shape: [3, 2, 10, 9], kernel: [2, 2], strides: [2, 2], pads: [[1, 0], [0, 1]], dilations: [1, 1], ceil: true },
  { shape: [1, 2, 150, 7], kernel: [2, 2], strides: [2, 2], pads: [[0, 0], [0, 0]], dilations: [1, 1], ceil: false },
  { shape: [2, 2, 7, 131], kernel: [2, 2], strides: [2, 2], pads: [[0, 0], [1, 1]], dilations: [1, 1], ceil: true },
  { shape: [2, 3, 9, 11], kernel: [3, 3], strides: [1, 1], pads: [[1, 1], [1, 1]], dilations: [1, 1], ceil: false },
  { shape: [2, 3, 12, 13], kernel: [3, 3], strides: [2, 2], pads: [[1, 1], [1, 1]], dilations: [1, 1], ceil: false },
  { shape: [1, 2, 8, 9], kernel: [2, 3], strides: [1, 2], pads: [[0, 1], [2, 0]], dilations: [1, 1], ceil: true },
  { shape: [1, 1, 5, 5], kernel: [1, 1], strides: [2, 2], pads: [[0, 0], [0, 0]], dilations: [1, 1], ceil: false },
  { shape: [1, 2, 6, 6], kernel: [3, 1], strides: [1, 1], pads: [[1, 1], [0, 0]], dilations: [1, 1], ceil: false },
  // windows of padding only (-Infinity, nothing picked)
  { shape: [1, 1, 2, 2], kernel: [2, 2], strides: [3, 3], pads: [[2, 1], [0, 0]], dilations: [1, 1], ceil: false },
  // the general path: dilation, 1-D and 3-D
  { shape: [2, 2, 9, 10], kernel: [2, 3], strides: [1, 2], pads: [[1, 1], [1, 0]], dilations: [2, 2], ceil: false },
  { shape: [2, 3, 17], kernel: [3], strides: [2], pads: [[1, 1]], dilations: [1], ceil: true },
  { shape: [1, 2, 4, 5, 6], kernel: [2, 2, 3], strides: [2, 1, 2], pads: [[0, 1], [1, 0], [1, 1]], dilations: [1, 1, 1], ceil: false },
];

describe('max pooling kernels', () => {
  for (const dtype of ['FP32', 'FP64'] as DType[]) {
    for (const c of cases) {
      it(`${dtype} x ${JSON.stringify(c.shape)} kernel ${JSON.stringify(c.kernel)} strides ${JSON.stringify(c.strides)} pads ${JSON.stringify(c.pads)}`, () => {
        const r = rng(numel(c.shape) + c.kernel.length);
        // small integers (ties in most windows), a few NaN and -Infinity
        const data = Array.from({ length: numel(c.shape) }, () => {
          const u = r();
          return u < 0.03 ? NaN : u < 0.06 ? -Infinity : randInt(r, -3, 3);
        });
        const x = toTyped(dtype, data) as FloatArray;
        const ref = reference(x, c);
        const y = kernels.maxPool(x, c.shape, c.kernel, c.strides, c.pads, c.dilations, c.ceil);
        expect(Array.from(y)).toEqual(ref.val);

        // gather of h = 0, 1, 2, ... reads back the picked index; scatter of g sums g at the picked positions
        const h = toTyped(dtype, Array.from({ length: x.length }, (_, i) => i)) as FloatArray;
        const gathered = kernels.maxPoolGather(h, x, c.shape, c.kernel, c.strides, c.pads, c.dilations, c.ceil);
        expect(Array.from(gathered)).toEqual(ref.idx.map((i) => (i < 0 ? 0 : i)));

        const g = toTyped(dtype, ref.idx.map((_, i) => 1 + (i % 7))) as FloatArray;
        const expected = new Array<number>(x.length).fill(0);
        ref.idx.forEach((i, o) => {
          if (i >= 0) expected[i]! += 1 + (o % 7);
        });
        const scattered = kernels.maxPoolScatter(g, x, c.shape, c.kernel, c.strides, c.pads, c.dilations, c.ceil);
        expect(Array.from(scattered)).toEqual(expected);
      });
    }
  }
});
