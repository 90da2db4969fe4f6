/**
 * Rearranging ops: tile (broadcast copies through an interleaved shape) with its internal gradient `tile_grad` (the
 * tiles summed), flip (a strided slice copy with step -1), roll (native, rolled axes or the flattened tensor), and
 * triu / tril (a native mask on the last two axes). Each derivative is the op itself or its mirror, so second order
 * comes for free.
 */
import { z } from 'zod';
import type { Dim } from '../tensor/shape.js';
import type { OpDef, VmapArgs } from './types.js';
import {
  ANY, attrAt, axesOrFail, axisOrFail, elements, failNode, fmt, FP, intSchema, needDtype, normAxes, normAxis,
} from './common.js';

// ---- tile ----

interface TileAttrs { repeats: number[] }

const tileAttrs = z.strictObject({
  repeats: z.array(intSchema.min(0)).describe('copies along each axis, one per axis of x (non-negative)'),
});

/** One broadcast copy of tile: `from` seen as `to`; `tiled` are the positions of the repeat axes in `to`. */
interface TileStep { from: number[]; to: number[]; tiled: number[] }

/** Tiled axes per step: two dims each plus one per run of other axes between them keeps a step within 64 dims. */
const TILED_PER_STEP = 21;

/**
 * The broadcast copies that make tile: a tiled axis of size d is split into [repeat, d] (the input seen as [1, d]
 * there), each run of other axes merged into one dim. Over 21 tiled axes (a rank above 21, possible up to 64) take
 * several steps, so no kernel sees more than 64 dims. The gradient sums the repeat axes, the steps in reverse.
 */
function tileSteps(shape: readonly number[], repeats: readonly number[]): TileStep[] {
  const axes = repeats.flatMap((r, i) => (r !== 1 ? [i] : []));
  const steps: TileStep[] = [];
  let cur = [...shape];
  for (let s = 0; s < axes.length || steps.length === 0; s += TILED_PER_STEP) {
    const group = new Set(axes.slice(s, s + TILED_PER_STEP));
    const from: number[] = [], to: number[] = [], tiled: number[] = [];
    let run: number | null = null;
    const endRun = () => {
      if (run !== null) { from.push(run); to.push(run); run = null; }
    };
    cur.forEach((d, i) => {
      if (!group.has(i)) { run = (run ?? 1) * d; return; }
      endRun();
      tiled.push(to.length);
      from.push(1, d);
      to.push(repeats[i]!, d);
    });
    endRun();
    steps.push({ from, to, tiled });
    cur = cur.map((d, i) => (group.has(i) ? d * repeats[i]! : d));
  }
  return steps;
}

const tiledShape = (shape: readonly Dim[], repeats: readonly number[]): Dim[] =>
  shape.map((d, i) => (repeats[i] === 0 ? 0 : d === null ? null : d * repeats[i]!));

const tile: OpDef<TileAttrs> = {
  name: 'tile',
  inputs: ['x'],
  attrs: tileAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'np.tile / torch.tile with one repeat per axis: x copied repeats[i] times along axis i.',
  conventions: ['repeats has one entry per axis of x (no implicit leading axes)', 'the gradient sums the tiles'],
  infer([x], attrs, ctx) {
    needDtype(x!.dtype, 'x', ANY, ctx);
    const rank = x!.shape.length;
    if (attrs.repeats.length !== rank) {
      failNode('INVALID_ATTRS', ctx, `repeats [${attrs.repeats.join(', ')}] has ${attrs.repeats.length} entries for x ${fmt(x!.shape)} (rank ${rank}); give one per axis`, attrAt('repeats'));
    }
    return { shape: tiledShape(x!.shape, attrs.repeats), dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    let data = x!.data;
    for (const { from, to } of tileSteps(x!.shape, attrs.repeats)) data = await k.broadcastTo(data, from, to);
    return { dtype: x!.dtype, shape: tiledShape(x!.shape, attrs.repeats) as number[], data };
  },
  flops: () => 0,
  vjp: ({ e, inputs: [x], g, attrs }) => [e.op('tile_grad', [g, x!], { repeats: attrs.repeats })],
  jvp: ({ e, tangents: [t], attrs }) => e.op('tile', [t!], { repeats: attrs.repeats }),
  vmap({ b, inputs: [x], attrs }) {
    b.out('tile', [x!.name], { ...attrs, repeats: [1, ...(attrs.repeats as number[])] });
    return true;
  },
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { repeats: [2, 3] }, note: 'both axes' },
    { inputs: [{ shape: [3, 1, 2] }], attrs: { repeats: [1, 4, 1] }, note: 'a size-1 axis' },
    { inputs: [{ shape: [2, 2], dtype: 'INT32', values: [1, 2, 3, 4] }], attrs: { repeats: [0, 2] }, note: 'INT32, a zero repeat' },
  ],
};

/** The tiles of g (tile's output) summed back to x's shape: tile's VJP; x supplies only its shape. */
const tileGrad: OpDef<TileAttrs> = {
  name: 'tile_grad',
  inputs: ['g', 'x'],
  internal: true,
  attrs: tileAttrs,
  outputDatatype: 'same as g',
  differentiable: true,
  doc: "Sums g (shaped like tile(x, repeats)) over its tiles, down to x's shape.",
  infer([g, x], attrs, ctx) {
    needDtype(g!.dtype, 'g', FP, ctx);
    const rank = x!.shape.length;
    if (attrs.repeats.length !== rank) {
      failNode('INVALID_ATTRS', ctx, `repeats [${attrs.repeats.join(', ')}] has ${attrs.repeats.length} entries for x ${fmt(x!.shape)} (rank ${rank})`, attrAt('repeats'));
    }
    const want = tiledShape(x!.shape, attrs.repeats);
    const ok = g!.shape.length === rank && g!.shape.every((d, i) => d === null || want[i] === null || d === want[i]);
    if (!ok) failNode('SHAPE_MISMATCH', ctx, `g ${fmt(g!.shape)} is not x ${fmt(x!.shape)} tiled by [${attrs.repeats.join(', ')}]: ${fmt(want)}`);
    return { shape: [...x!.shape], dtype: g!.dtype };
  },
  async run([g, x], attrs, k) {
    let data = g!.data;
    for (const { to, tiled } of tileSteps(x!.shape, attrs.repeats).reverse()) data = await k.reduce('sum', data, to, tiled);
    return { dtype: g!.dtype, shape: [...x!.shape], data };
  },
  flops: ([g]) => elements(g!),
  vjp: ({ e, g, attrs }) => [e.op('tile', [g], { repeats: attrs.repeats }), null],
  jvp: ({ e, inputs: [, x], tangents: [t], attrs }) => (t ? e.op('tile_grad', [t, x!], { repeats: attrs.repeats }) : null),
  vmap({ b, inputs: [g, x], attrs }) {
    if (!g!.batched) {
      b.out('tile_grad', [g!.name, b.zeros(x!.dtype, x!.shape)], attrs);
      return false;
    }
    const carrier = x!.batched ? x!.name : b.zeros(x!.dtype, [b.K, ...x!.shape]);
    b.out('tile_grad', [g!.name, carrier], { ...attrs, repeats: [1, ...(attrs.repeats as number[])] });
    return true;
  },
  samples: [
    { inputs: [{ shape: [4, 6] }, { shape: [2, 3] }], attrs: { repeats: [2, 2] } },
    { inputs: [{ shape: [3, 4, 2] }, { shape: [3, 1, 2] }], attrs: { repeats: [1, 4, 1] }, note: 'one tiled axis' },
  ],
};

// ---- flip ----

interface FlipAttrs { axes: number | number[] | null }

const flip: OpDef<FlipAttrs> = {
  name: 'flip',
  inputs: ['x'],
  attrs: z.strictObject({
    axes: z.union([intSchema, z.array(intSchema), z.null()]).default(null).describe('axes to reverse; null or omitted = every axis'),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'np.flip / torch.flip: the order of elements reversed along the given axes.',
  conventions: ['axes omitted or null flips every axis; a repeated axis is INVALID_ATTRS', 'the gradient is flip of the cotangent'],
  infer([x], attrs, ctx) {
    needDtype(x!.dtype, 'x', ANY, ctx);
    axesOrFail(attrs.axes, x!.shape.length, ctx);
    return { shape: [...x!.shape], dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    const shape = [...x!.shape];
    const axes = normAxes(attrs.axes, shape.length);
    const starts = shape.map((d, i) => (axes.includes(i) ? Math.max(d - 1, 0) : 0));
    const steps = shape.map((_, i) => (axes.includes(i) ? -1 : 1));
    return { dtype: x!.dtype, shape, data: await k.slice(x!.data, shape, starts, steps, shape) };
  },
  flops: () => 0,
  vjp: ({ e, g, attrs }) => [e.op('flip', [g], { axes: attrs.axes })],
  jvp: ({ e, tangents: [t], attrs }) => e.op('flip', [t!], { axes: attrs.axes }),
  vmap({ b, inputs: [x], attrs }) {
    b.out('flip', [x!.name], { axes: b.axes(attrs.axes, x!.shape.length).map((a) => a + 1) });
    return true;
  },
  samples: [
    { inputs: [{ shape: [3, 4] }], attrs: { axes: null }, note: 'every axis' },
    { inputs: [{ shape: [2, 3, 2] }], attrs: { axes: [-1, 0] }, note: 'two axes, one negative' },
    { inputs: [{ shape: [5], dtype: 'INT64', values: [1, 2, 3, 4, 5] }], attrs: { axes: 0 }, note: 'INT64' },
  ],
};

// ---- roll ----

interface RollAttrs { shifts: number | number[]; axes: number | number[] | null }

const list = (v: number | number[]): number[] => (typeof v === 'number' ? [v] : v);

/** Shift per axis of x (each taken modulo its size, repeated axes added up); the flattened tensor when axes is null. */
function rollShifts(shape: readonly number[], a: RollAttrs): number[] {
  const mod = (s: number, d: number) => (d === 0 ? 0 : ((s % d) + d) % d);
  if (a.axes === null) return [mod(list(a.shifts)[0]!, shape.reduce((p, d) => p * d, 1))];
  const out = shape.map(() => 0);
  const shifts = list(a.shifts);
  list(a.axes).forEach((ax, i) => {
    const n = normAxis(ax, shape.length);
    out[n] = mod(out[n]! + mod(shifts[i]!, shape[n]!), shape[n]!);
  });
  return out;
}

const negated = (s: number | number[]): number | number[] => (typeof s === 'number' ? -s : s.map((v) => -v));

const roll: OpDef<RollAttrs> = {
  name: 'roll',
  inputs: ['x'],
  attrs: z.strictObject({
    shifts: z.union([intSchema, z.array(intSchema)]).describe('shift per listed axis (positive moves elements toward higher indices)'),
    axes: z.union([intSchema, z.array(intSchema), z.null()]).default(null).describe('axes to roll; null or omitted = the flattened tensor (one shift)'),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'np.roll / torch.roll: elements shifted cyclically along axes; without axes the flattened tensor is rolled and reshaped back.',
  conventions: [
    'shifts and axes pair up one to one; an axis listed twice is rolled by the sum',
    'without axes, shifts is one value and rolls the flattened tensor',
    'the gradient is roll by the negated shifts',
  ],
  check(attrs, ctx) {
    const n = list(attrs.shifts).length;
    if (attrs.axes === null) {
      if (n !== 1) failNode('INVALID_ATTRS', ctx, `shifts [${list(attrs.shifts).join(', ')}] has ${n} entries; without axes roll takes one shift (of the flattened tensor)`, attrAt('shifts'));
    } else if (list(attrs.axes).length !== n) {
      failNode('INVALID_ATTRS', ctx, `shifts has ${n} entries but axes has ${list(attrs.axes).length}; give one shift per axis`, attrAt('shifts'));
    }
  },
  infer([x], attrs, ctx) {
    needDtype(x!.dtype, 'x', ANY, ctx);
    if (attrs.axes !== null) for (const a of list(attrs.axes)) axisOrFail(a, x!.shape.length, ctx, 'axis', 'axes');
    return { shape: [...x!.shape], dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    const shape = [...x!.shape];
    const flat = attrs.axes === null ? [shape.reduce((p, d) => p * d, 1)] : shape;
    const data = await k.roll(x!.data, flat, rollShifts(shape, attrs));
    return { dtype: x!.dtype, shape, data };
  },
  flops: () => 0,
  vjp: ({ e, g, attrs }) => [e.op('roll', [g], { shifts: negated(attrs.shifts), axes: attrs.axes })],
  jvp: ({ e, tangents: [t], attrs }) => e.op('roll', [t!], { shifts: attrs.shifts, axes: attrs.axes }),
  vmap({ b, inputs: [x], attrs, output }) {
    const axes = attrs.axes as number | number[] | null | undefined;
    if (axes === null || axes === undefined) {
      // the flattened tensor of each batch member: roll [K, n] along axis 1
      const flat = b.reshape(x!, [b.K, x!.shape.reduce((p, d) => p * d, 1)]);
      const rolled = b.tmp('roll', [flat], { shifts: attrs.shifts, axes: [1] });
      b.out('reshape', [rolled], { shape: [b.K, ...output.shape] });
    } else {
      b.out('roll', [x!.name], { ...attrs, axes: list(axes).map((a) => b.axis(a, x!.shape.length, 0) + 1) });
    }
    return true;
  },
  samples: [
    { inputs: [{ shape: [3, 4] }], attrs: { shifts: [1, -5], axes: [0, 1] }, note: 'two axes, a shift beyond the size' },
    { inputs: [{ shape: [2, 3] }], attrs: { shifts: 4, axes: null }, note: 'flattened' },
    { inputs: [{ shape: [2, 5] }], attrs: { shifts: [2, 1], axes: [-1, -1] }, note: 'an axis listed twice' },
    { inputs: [{ shape: [4], dtype: 'INT32', values: [1, 2, 3, 4] }], attrs: { shifts: 1, axes: 0 }, note: 'INT32' },
  ],
};

// ---- triu / tril ----

interface TriAttrs { k: number }

function triangleOp(upper: boolean): OpDef<TriAttrs> {
  const name = upper ? 'triu' : 'tril';
  return {
    name,
    inputs: ['x'],
    attrs: z.strictObject({
      k: intSchema.default(0).describe(`diagonal offset: 0 the main diagonal, > 0 above it, < 0 below it`),
    }),
    outputDatatype: 'same as x',
    differentiable: true,
    doc: upper
      ? 'np.triu / torch.triu: the upper triangle of the last two axes (element [i, j] kept where j - i >= k), zeros elsewhere; batched over leading axes.'
      : 'np.tril / torch.tril: the lower triangle of the last two axes (element [i, j] kept where j - i <= k), zeros elsewhere; batched over leading axes.',
    conventions: ['x needs at least two axes', `the gradient is ${name} of the cotangent`],
    infer([x], _attrs, ctx) {
      needDtype(x!.dtype, 'x', ANY, ctx);
      if (x!.shape.length < 2) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x!.shape)} has rank ${x!.shape.length}; ${name} works on the last two axes and needs rank >= 2`);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    async run([x], attrs, k) {
      return { dtype: x!.dtype, shape: [...x!.shape], data: await k.triangle(x!.data, [...x!.shape], attrs.k, upper) };
    },
    flops: (_i, out) => elements(out),
    vjp: ({ e, g, attrs }) => [e.op(name, [g], { k: attrs.k })],
    jvp: ({ e, tangents: [t], attrs }) => e.op(name, [t!], { k: attrs.k }),
    // the last two axes stay the last two under a leading batch axis
    vmap({ b, inputs: [x] }: VmapArgs) {
      b.same([x!.name]);
      return true;
    },
    samples: [
      { inputs: [{ shape: [3, 4] }], attrs: { k: 0 }, note: 'main diagonal' },
      { inputs: [{ shape: [2, 4, 3] }], attrs: { k: upper ? 1 : -1 }, note: 'batched, off the diagonal' },
      { inputs: [{ shape: [3, 3] }], attrs: { k: upper ? -1 : 2 }, note: 'the other side' },
      { inputs: [{ shape: [2, 2], dtype: 'INT64', values: [1, 2, 3, 4] }], attrs: {} as TriAttrs, note: 'INT64, default k' },
    ],
  };
}

export const ops: OpDef[] = [tile, flip, roll, triangleOp(true), triangleOp(false), tileGrad];
