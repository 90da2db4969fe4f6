/**
 * The convolution kernels against direct loops over their definitions (no im2col): conv, convTranspose as ONNX
 * ConvTranspose, convWeightGrad; 1-3 spatial axes, strides, asymmetric pads, dilations, groups, depthwise, the
 * pointwise shortcut, column tiles (an image whose column matrix passes the 16 MiB buffer), and argument checks.
 */
import { describe, expect, it } from 'vitest';

import { kernels } from '../../src/kernels.js';
import type { FloatArray } from '../../src/kernels.types.js';
import type { DType } from '../../src/tensor/dtype.js';
import { rng } from '../support/random.js';
import { fromTyped, mismatch, numel, randData, randInt, toTyped as typed } from './reference.js';

const toTyped = (dtype: DType, data: readonly number[]): FloatArray => typed(dtype, data) as FloatArray;

interface Attrs {
  strides: number[];
  pads: [number, number][];
  dilations: number[];
  groups: number;
}

/** Calls f(p) for every multi-index p of `shape` (row-major). */
function forEachIndex(shape: readonly number[], f: (p: number[]) => void): void {
  if (shape.some((d) => d === 0)) return;
  const p = shape.map(() => 0);
  for (;;) {
    f(p);
    let d = shape.length - 1;
    while (d >= 0 && ++p[d]! === shape[d]) p[d--] = 0;
    if (d < 0) return;
  }
}

const flat = (shape: readonly number[], p: readonly number[]): number => p.reduce((o, v, i) => o * shape[i]! + v, 0);

/** conv output spatial sizes. */
function convOut(xs: number[], ks: number[], a: Attrs): number[] {
  return ks.map((k, i) => Math.floor((xs[i]! + a.pads[i]![0] + a.pads[i]![1] - a.dilations[i]! * (k - 1) - 1) / a.strides[i]!) + 1);
}

/**
 * Visits every (image, output channel, output position, input channel, kernel tap) of the forward conv from an input
 * of spatial size `inS` that meets a real input element: f(n, o, oIdx, c, cw, kIdx, iIdx) with flat indices.
 */
function forEachTap(N: number, C: number, O: number, inS: number[], outS: number[], ks: number[], a: Attrs,
  f: (n: number, o: number, op: number, c: number, cw: number, k: number, ip: number) => void): void {
  const Cg = C / a.groups, Og = O / a.groups;
  forEachIndex([N, O, ...outS], ([n, o, ...p]) => {
    const grp = Math.floor(o! / Og);
    forEachIndex([Cg, ...ks], ([cw, ...k]) => {
      const i = p.map((pi, j) => pi * a.strides[j]! - a.pads[j]![0] + k[j]! * a.dilations[j]!);
      if (i.some((v, j) => v < 0 || v >= inS[j]!)) return;
      f(n!, o!, flat(outS, p), grp * Cg + cw!, cw!, flat(ks, k), flat(inS, i));
    });
  });
}

function convRef(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null, a: Attrs): { data: number[]; shape: number[] } {
  const [N, C, ...S] = xs as [number, number, ...number[]];
  const [O, , ...K] = ws as [number, number, ...number[]];
  const outS = convOut(S, K, a);
  const P = numel(outS), I = numel(S), KK = numel(K), Cg = C / a.groups;
  const y = new Array<number>(N * O * P).fill(0);
  forEachTap(N, C, O, S, outS, K, a, (n, o, p, c, cw, k, i) => {
    y[(n * O + o) * P + p]! += w[(o * Cg + cw) * KK + k]! * x[(n * C + c) * I + i]!;
  });
  if (b) for (let j = 0; j < y.length; j++) y[j]! += b[Math.floor(j / P) % O]!;
  return { data: y, shape: [N, O, ...outS] };
}

/** ONNX ConvTranspose by its definition: every x element scatters w into the (cropped) output. */
function convTransposeRef(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null, a: Attrs, outputPadding: number[]): { data: number[]; shape: number[] } {
  const [N, C, ...S] = xs as [number, number, ...number[]];
  const [, Og, ...K] = ws as [number, number, ...number[]];
  const O = Og * a.groups;
  const outS = S.map((s, i) => (s - 1) * a.strides[i]! - a.pads[i]![0] - a.pads[i]![1] + a.dilations[i]! * (K[i]! - 1) + 1 + outputPadding[i]!);
  // the forward conv from outS to S with weight w (C, Og, K) is the adjoint: reuse its taps
  const Y = numel(outS), X = numel(S), KK = numel(K);
  const y = new Array<number>(N * O * Y).fill(0);
  forEachTap(N, O, C, outS, S, K, a, (n, c, p, o, ow, k, q) => {
    y[(n * O + o) * Y + q]! += w[(c * Og + ow) * KK + k]! * x[(n * C + c) * X + p]!;
  });
  if (b) for (let j = 0; j < y.length; j++) y[j]! += b[Math.floor(j / Y) % O]!;
  return { data: y, shape: [N, O, ...outS] };
}

function weightGradRef(x: number[], xs: number[], g: number[], ws: number[], a: Attrs): number[] {
  const [N, C, ...S] = xs as [number, number, ...number[]];
  const [O, Cg, ...K] = ws as [number, number, ...number[]];
  const outS = convOut(S, K, a);
  const P = numel(outS), I = numel(S), KK = numel(K);
  const gw = new Array<number>(numel(ws)).fill(0);
  forEachTap(N, C, O, S, outS, K, a, (n, o, p, c, cw, k, i) => {
    gw[(o * Cg + cw) * KK + k]! += g[(n * O + o) * P + p]! * x[(n * C + c) * I + i]!;
  });
  return gw;
}

interface Case extends Attrs {
  xs: number[];
  ws: number[];
  bias: boolean;
}

/** A random valid conv: 1-3 spatial axes, groups (sometimes depthwise), strides, dilations, asymmetric pads. */
function randomCase(r: () => number): Case {
  const nd = randInt(r, 1, 3);
  const groups = [1, 1, 2, 3][randInt(r, 0, 3)]!;
  const depthwise = r() < 0.25;
  const Cg = depthwise ? 1 : randInt(r, 1, 3);
  const C = Cg * groups;
  const O = groups * randInt(r, 1, 3);
  const K = Array.from({ length: nd }, () => randInt(r, 1, nd === 3 ? 2 : 3));
  const strides = K.map(() => randInt(r, 1, 3));
  const dilations = K.map(() => randInt(r, 1, 2));
  const pads = K.map(() => [randInt(r, 0, 2), randInt(r, 0, 2)] as [number, number]);
  const S = K.map((k, i) => Math.max(1, dilations[i]! * (k - 1) + 1 - pads[i]![0] - pads[i]![1]) + randInt(r, 0, nd === 3 ? 3 : 6));
  return { xs: [randInt(r, 1, 2), C, ...S], ws: [O, Cg, ...K], bias: r() < 0.6, strides, pads, dilations, groups };
}

const TOL: Record<string, [number, number]> = { FP64: [1e-12, 1e-12], FP32: [1e-5, 1e-5] };

describe('conv kernels', () => {
  it('conv, convTranspose and convWeightGrad match their definitions on random 1-3-D cases', () => {
    const r = rng(31);
    for (const dtype of ['FP64', 'FP32'] as DType[]) {
      const [rtol, atol] = TOL[dtype]!;
      for (let trial = 0; trial < 60; trial++) {
        const c = randomCase(r);
        const label = `${dtype} ${JSON.stringify(c)}`;
        const x = randData(r, numel(c.xs), dtype);
        const w = randData(r, numel(c.ws), dtype);
        const b = c.bias ? randData(r, c.ws[0]!, dtype) : null;
        const y = kernels.conv(toTyped(dtype, x), c.xs, toTyped(dtype, w), c.ws, b && toTyped(dtype, b), c.strides, c.pads, c.dilations, c.groups);
        const ref = convRef(x, c.xs, w, c.ws, b, c);
        expect(y.shape, label).toEqual(ref.shape);
        expect(mismatch(y.data, ref.data, rtol, atol), label).toBeUndefined();

        const g = randData(r, numel(ref.shape), dtype);
        const gw = kernels.convWeightGrad(toTyped(dtype, x), c.xs, toTyped(dtype, g), ref.shape, c.ws, c.strides, c.pads, c.dilations, c.groups);
        expect(mismatch(gw, weightGradRef(x, c.xs, g, c.ws, c), rtol, atol), label).toBeUndefined();

        // conv_transpose of the conv's output shape with w read as (C_T, O_T/groups, K) = (O, Cg, K)
        // a random output padding, or the one that gives back x's size where the random one would empty the output
        const op = c.strides.map((s, i) => {
          const natural = (c.xs[2 + i]! + c.pads[i]![0] + c.pads[i]![1] - c.dilations[i]! * (c.ws[2 + i]! - 1) - 1) % s;
          const pick = randInt(r, 0, Math.max(s, c.dilations[i]!) - 1);
          const size = (ref.shape[2 + i]! - 1) * s - c.pads[i]![0] - c.pads[i]![1] + c.dilations[i]! * (c.ws[2 + i]! - 1) + 1 + pick;
          return size >= 1 ? pick : natural;
        });
        const bt = c.bias ? randData(r, c.xs[1]!, dtype) : null;
        const yt = kernels.convTranspose(toTyped(dtype, g), ref.shape, toTyped(dtype, w), c.ws, bt && toTyped(dtype, bt), c.strides, c.pads, c.dilations, c.groups, op);
        const tref = convTransposeRef(g, ref.shape, w, c.ws, bt, c, op);
        expect(yt.shape, label).toEqual(tref.shape);
        expect(mismatch(yt.data, tref.data, rtol, atol), label).toBeUndefined();
      }
    }
  });

  it('takes the pointwise shortcut for 1x1 convolutions', () => {
    const r = rng(32);
    const a: Attrs = { strides: [1, 1], pads: [[0, 0], [0, 0]], dilations: [1, 1], groups: 2 };
    const xs = [2, 4, 3, 5], ws = [6, 2, 1, 1];
    const x = randData(r, numel(xs), 'FP64'), w = randData(r, numel(ws), 'FP64'), b = randData(r, 6, 'FP64');
    const y = kernels.conv(Float64Array.from(x), xs, Float64Array.from(w), ws, Float64Array.from(b), a.strides, a.pads, a.dilations, a.groups);
    const ref = convRef(x, xs, w, ws, b, a);
    expect(mismatch(y.data, ref.data, 1e-12, 1e-12)).toBeUndefined();
    const g = randData(r, numel(ref.shape), 'FP64');
    expect(mismatch(kernels.convWeightGrad(Float64Array.from(x), xs, Float64Array.from(g), ref.shape, ws, a.strides, a.pads, a.dilations, a.groups),
      weightGradRef(x, xs, g, ws, a), 1e-12, 1e-12)).toBeUndefined();
    const yt = kernels.convTranspose(Float64Array.from(g), ref.shape, Float64Array.from(w), ws, null, a.strides, a.pads, a.dilations, a.groups, [0, 0]);
    expect(mismatch(yt.data, convTransposeRef(g, ref.shape, w, ws, null, a, [0, 0]).data, 1e-12, 1e-12)).toBeUndefined();
  });

  it('processes an image whose column matrix passes the buffer limit in tiles of output positions', () => {
    const r = rng(33);
    // 1-D, 16 channels x 9 taps = 144 rows x 15 000 positions x 8 bytes = 17.3 MB of columns: more than one tile
    const a: Attrs = { strides: [1], pads: [[2, 3]], dilations: [2], groups: 1 };
    const xs = [1, 16, 15_000], ws = [1, 16, 9];
    const x = randData(r, numel(xs), 'FP64'), w = randData(r, numel(ws), 'FP64');
    const y = kernels.conv(Float64Array.from(x), xs, Float64Array.from(w), ws, null, a.strides, a.pads, a.dilations, a.groups);
    const ref = convRef(x, xs, w, ws, null, a);
    expect(y.shape).toEqual(ref.shape);
    expect(mismatch(y.data, ref.data, 1e-12, 1e-12)).toBeUndefined();
    const g = randData(r, numel(ref.shape), 'FP64');
    const gw = kernels.convWeightGrad(Float64Array.from(x), xs, Float64Array.from(g), ref.shape, ws, a.strides, a.pads, a.dilations, a.groups);
    expect(mismatch(gw, weightGradRef(x, xs, g, ws, a), 1e-10, 1e-10)).toBeUndefined();
    const yt = kernels.convTranspose(Float64Array.from(g), ref.shape, Float64Array.from(w), ws, null, a.strides, a.pads, a.dilations, a.groups, [1]);
    expect(mismatch(yt.data, convTransposeRef(g, ref.shape, w, ws, null, a, [1]).data, 1e-12, 1e-12)).toBeUndefined();
  });

  it('matches its definition where stride 1 keeps the size (columns copied as shifted planes)', () => {
    // Input and output lines and planes of equal size: taps reaching into the padding on either side, dilation,
    // asymmetric pads, taps that miss the image entirely (a kernel taller than the image), 1-3-D, groups, width 1.
    const r = rng(36);
    const cases: Case[] = [
      { xs: [2, 3, 5, 7], ws: [4, 3, 3, 3], bias: true, strides: [1, 1], pads: [[1, 1], [1, 1]], dilations: [1, 1], groups: 1 },
      { xs: [1, 4, 6, 5], ws: [4, 2, 3, 3], bias: false, strides: [1, 1], pads: [[2, 2], [2, 2]], dilations: [2, 2], groups: 2 },
      { xs: [2, 2, 4, 6], ws: [3, 2, 3, 3], bias: true, strides: [1, 1], pads: [[2, 0], [0, 2]], dilations: [1, 1], groups: 1 },
      { xs: [1, 2, 2, 3], ws: [2, 2, 5, 3], bias: true, strides: [1, 1], pads: [[4, 0], [1, 1]], dilations: [1, 1], groups: 1 },
      { xs: [1, 2, 3, 4, 5], ws: [2, 2, 3, 3, 3], bias: true, strides: [1, 1, 1], pads: [[1, 1], [1, 1], [1, 1]], dilations: [1, 1, 1], groups: 1 },
      { xs: [2, 3, 9], ws: [2, 3, 3], bias: false, strides: [1], pads: [[1, 1]], dilations: [1], groups: 1 },
      { xs: [1, 2, 5, 1], ws: [2, 2, 3, 3], bias: true, strides: [1, 1], pads: [[1, 1], [1, 1]], dilations: [1, 1], groups: 1 },
    ];
    for (const dtype of ['FP64', 'FP32'] as DType[]) {
      const [rtol, atol] = TOL[dtype]!;
      for (const c of cases) {
        const label = `${dtype} ${JSON.stringify(c)}`;
        const x = randData(r, numel(c.xs), dtype), w = randData(r, numel(c.ws), dtype);
        const b = c.bias ? randData(r, c.ws[0]!, dtype) : null;
        const y = kernels.conv(toTyped(dtype, x), c.xs, toTyped(dtype, w), c.ws, b && toTyped(dtype, b), c.strides, c.pads, c.dilations, c.groups);
        const ref = convRef(x, c.xs, w, c.ws, b, c);
        expect(y.shape, label).toEqual(c.xs.map((d, i) => (i === 1 ? c.ws[0]! : d)));
        expect(mismatch(y.data, ref.data, rtol, atol), label).toBeUndefined();
        const g = randData(r, numel(ref.shape), dtype);
        const gw = kernels.convWeightGrad(toTyped(dtype, x), c.xs, toTyped(dtype, g), ref.shape, c.ws, c.strides, c.pads, c.dilations, c.groups);
        expect(mismatch(gw, weightGradRef(x, c.xs, g, c.ws, c), rtol, atol), label).toBeUndefined();
        const op = c.strides.map(() => 0);
        const yt = kernels.convTranspose(toTyped(dtype, g), ref.shape, toTyped(dtype, w), c.ws, null, c.strides, c.pads, c.dilations, c.groups, op);
        expect(mismatch(yt.data, convTransposeRef(g, ref.shape, w, c.ws, null, c, op).data, rtol, atol), label).toBeUndefined();
      }
    }
  });

  it('matches its definition on the direct FP32 path (up to 64 channels, stride 1, 1-D and 2-D)', () => {
    // native/conv_direct.cpp: every output channel block (1-6 channels, 1-16 in all), tap counts that leave 0-3 taps
    // over the weight gradient's blocks of 4, outputs narrower than a vector, pads larger than the kernel, asymmetric
    // pads, and the input gradient through the flipped kernel (convTranspose with stride 1). Also in sizes whose
    // output grid passes a block boundary by one.
    const r = rng(37);
    const sizes: [number[], number[], [number, number][]][] = [
      [[3, 1, 28, 28], [6, 1, 5, 5], [[2, 2], [2, 2]]],
      [[2, 6, 14, 14], [16, 6, 5, 5], [[0, 0], [0, 0]]],
      [[2, 16, 10, 10], [6, 16, 5, 5], [[4, 4], [4, 4]]],
      [[1, 5, 7, 9], [11, 5, 3, 2], [[1, 0], [0, 3]]],
      [[2, 2, 3, 4], [13, 2, 3, 3], [[4, 2], [1, 5]]],
      [[1, 3, 1, 17], [4, 3, 1, 3], [[0, 0], [2, 1]]],
      [[2, 4, 33], [7, 4, 5], [[2, 2]]],
      [[1, 1, 6, 5], [1, 1, 2, 2], [[0, 0], [0, 0]]],
      [[1, 16, 5, 6], [16, 16, 3, 3], [[1, 1], [1, 1]]],
      // past 16 channels: taps in chunks of 16 channels (the last one short), the weight gradient on a large image
      [[1, 40, 9, 11], [21, 40, 3, 3], [[1, 1], [1, 1]]],
      [[1, 20, 24, 24], [18, 20, 3, 3], [[1, 1], [1, 1]]],
    ];
    for (const [xs, ws, pads] of sizes) {
      const nd = xs.length - 2;
      const c: Case = { xs, ws, bias: true, strides: new Array(nd).fill(1), pads, dilations: new Array(nd).fill(1), groups: 1 };
      const label = JSON.stringify(c);
      const x = randData(r, numel(xs), 'FP32'), w = randData(r, numel(ws), 'FP32'), b = randData(r, ws[0]!, 'FP32');
      const y = kernels.conv(toTyped('FP32', x), xs, toTyped('FP32', w), ws, toTyped('FP32', b), c.strides, pads, c.dilations, 1);
      const ref = convRef(x, xs, w, ws, b, c);
      expect(y.shape, label).toEqual(ref.shape);
      // sums of up to 400 products of numbers up to 3 in FP32 (360 in the 40-channel case)
      expect(mismatch(y.data, ref.data, 1e-5, 1e-4), label).toBeUndefined();
      const g = randData(r, numel(ref.shape), 'FP32');
      const gw = kernels.convWeightGrad(toTyped('FP32', x), xs, toTyped('FP32', g), ref.shape, ws, c.strides, pads, c.dilations, 1);
      expect(mismatch(gw, weightGradRef(x, xs, g, ws, c), 1e-5, 1e-3), label).toBeUndefined();
      const bt = randData(r, xs[1]!, 'FP32');
      const yt = kernels.convTranspose(toTyped('FP32', g), ref.shape, toTyped('FP32', w), ws, toTyped('FP32', bt), c.strides, pads, c.dilations, 1, new Array(nd).fill(0));
      expect(mismatch(yt.data, convTransposeRef(g, ref.shape, w, ws, bt, c, new Array(nd).fill(0)).data, 1e-5, 1e-4), label).toBeUndefined();
    }
  });

  it('splits a large batch across threads with the results of one image at a time', () => {
    // 4 images of 16 x 24 x 24, 16 output channels, 3x3 in 2 groups: 2.7M multiply-adds, enough to split the images
    const r = rng(35);
    const a: Attrs = { strides: [1, 1], pads: [[1, 1], [1, 1]], dilations: [1, 1], groups: 2 };
    const xs = [4, 16, 24, 24], ws = [16, 8, 3, 3], per = 16 * 24 * 24;
    const x = Float64Array.from(randData(r, numel(xs), 'FP64')), w = Float64Array.from(randData(r, numel(ws), 'FP64'));
    const b = Float64Array.from(randData(r, 16, 'FP64'));
    const y = kernels.conv(x, xs, w, ws, b, a.strides, a.pads, a.dilations, a.groups);
    const g = Float64Array.from(randData(r, numel(y.shape), 'FP64'));
    const gw = kernels.convWeightGrad(x, xs, g, y.shape, ws, a.strides, a.pads, a.dilations, a.groups);
    const gx = kernels.convTranspose(g, y.shape, w, ws, b, a.strides, a.pads, a.dilations, a.groups, [0, 0]);
    const sum = new Array<number>(numel(ws)).fill(0);
    for (let n = 0; n < 4; n++) {
      const xn = x.subarray(n * per, (n + 1) * per), gn = g.subarray(n * per, (n + 1) * per);
      const one = kernels.conv(xn, [1, 16, 24, 24], w, ws, b, a.strides, a.pads, a.dilations, a.groups);
      expect(fromTyped(y.data.subarray(n * per, (n + 1) * per))).toEqual(fromTyped(one.data));
      const back = kernels.convTranspose(gn, [1, 16, 24, 24], w, ws, b, a.strides, a.pads, a.dilations, a.groups, [0, 0]);
      expect(fromTyped(gx.data.subarray(n * per, (n + 1) * per))).toEqual(fromTyped(back.data));
      fromTyped(kernels.convWeightGrad(xn, [1, 16, 24, 24], gn, [1, 16, 24, 24], ws, a.strides, a.pads, a.dilations, a.groups)).forEach((v, i) => { sum[i]! += v; });
    }
    expect(mismatch(gw, sum, 1e-12, 1e-12)).toBeUndefined();
  });

  it('runs on the thread pool with the same result', async () => {
    const r = rng(34);
    const a: Attrs = { strides: [2, 2], pads: [[1, 1], [1, 1]], dilations: [1, 1], groups: 1 };
    const xs = [3, 4, 9, 9], ws = [5, 4, 3, 3];
    const x = Float32Array.from(randData(r, numel(xs), 'FP32')), w = Float32Array.from(randData(r, numel(ws), 'FP32'));
    const sync = kernels.conv(x, xs, w, ws, null, a.strides, a.pads, a.dilations, a.groups);
    const async = await kernels.async.conv(x, xs, w, ws, null, a.strides, a.pads, a.dilations, a.groups);
    expect(fromTyped(async.data)).toEqual(fromTyped(sync.data));
  });

  it('rejects inconsistent shapes and attributes with INVALID_ARGUMENT', () => {
    const x = new Float32Array(2 * 4 * 5 * 5), w = new Float32Array(6 * 2 * 3 * 3);
    const ok = (): unknown => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [1, 1], [[0, 0], [0, 0]], [1, 1], 2);
    expect(ok()).toMatchObject({ shape: [2, 6, 3, 3] });
    const bad: [string, () => unknown, RegExp][] = [
      ['groups not dividing C', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [1, 1], [[0, 0], [0, 0]], [1, 1], 3), /groups 3 must divide/],
      ['w channels', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [1, 1], [[0, 0], [0, 0]], [1, 1], 1), /C\/groups = 4/],
      ['kernel larger than the padded input', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [1, 1], [[0, 0], [0, 0]], [3, 1], 2), /smaller than the dilated kernel/],
      ['strides length', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [1], [[0, 0], [0, 0]], [1, 1], 2), /strides has 1 entries/],
      ['zero stride', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [0, 1], [[0, 0], [0, 0]], [1, 1], 2), /strides \[0, 1\] must be >= 1/],
      ['negative pad', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [1, 1], [[0, -1], [0, 0]], [1, 1], 2), /pads/],
      ['bias length', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], new Float32Array(5), [1, 1], [[0, 0], [0, 0]], [1, 1], 2), /b \[5\] must have shape \[6\]/],
      ['datatypes', () => kernels.conv(x, [2, 4, 5, 5], new Float64Array(108), [6, 2, 3, 3], null, [1, 1], [[0, 0], [0, 0]], [1, 1], 2), /w is FP64/],
      ['integers', () => kernels.conv(new Int32Array(200) as unknown as FloatArray, [2, 4, 5, 5], new Int32Array(108) as unknown as FloatArray, [6, 2, 3, 3], null, [1, 1], [[0, 0], [0, 0]], [1, 1], 2), /FP32 and FP64/],
      ['rank', () => kernels.conv(x, [200], w, [108], null, [], [], [], 1), /rank 3 to 5/],
      ['output padding', () => kernels.convTranspose(x, [2, 4, 5, 5], new Float32Array(108), [4, 3, 3, 3], null, [2, 1], [[0, 0], [0, 0]], [1, 1], 1, [2, 0]), /outputPadding \[2, 0\]/],
      ['weight grad g shape', () => kernels.convWeightGrad(x, [2, 4, 5, 5], new Float32Array(144), [2, 6, 3, 4], [6, 2, 3, 3], [1, 1], [[0, 0], [0, 0]], [1, 1], 2), /g \[2, 6, 3, 4\] must have the shape of conv\(x, w\), \[2, 6, 3, 3\]/],
      ['huge dilation', () => kernels.conv(x, [2, 4, 5, 5], w, [6, 2, 3, 3], null, [1, 1], [[0, 0], [0, 0]], [2 ** 52, 1], 2), /must be >= 1|too large/],
    ];
    for (const [what, call, msg] of bad) expect(call, what).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(msg) }));
  });
});
