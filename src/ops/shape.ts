/**
 * Shape ops that move data without indexing: reshape, broadcast_to, squeeze, unsqueeze, pad, concat, stack (plus the
 * internal `concat_part`). The indexing ops (slice, gather, one_hot) live in shape_index.ts and are exported from
 * here too, so the registry collects the whole family from one module.
 */
import { z } from 'zod';
import { symNumel, type SymShape } from '../tensor/shape.js';
import type { OpDef, VmapArgs } from './types.js';
import {
  ANY, attrAt, axesOrFail, axisOrFail, failNode, fmt, inputAt, intSchema, normAxes, normAxis, orZeros, reshapeToLike,
  sameDtype, unbroadcast, shapeOrFail,
} from './common.js';
import { ops as indexOps } from './shape_index.js';

const elementsOf = (s: SymShape) => s.reduce<number>((p, d) => p * (d ?? 0), 1);

/** Batching rule of the ops that only reshape x (the data is shared): x reshaped to [K, ...output shape]. */
function batchReshape({ b, inputs: [x], output }: VmapArgs): boolean {
  b.out('reshape', [x!.name], { shape: [b.K, ...output.shape] });
  return true;
}

/** Batching rule of concat (`newAxis` false) and stack: every operand batched, the axis moved past the batch axis. */
function batchJoin(op: string, newAxis: boolean) {
  return ({ b, inputs, attrs }: VmapArgs): boolean => {
    const rank = inputs[0]!.shape.length + (newAxis ? 1 : 0);
    b.out(op, inputs.map((v) => b.tile(v)), { ...attrs, axis: b.axis(attrs.axis, rank, 0) + 1 });
    return true;
  };
}

interface ReshapeAttrs { shape: number[] }

function reshapeTarget(inShape: SymShape, target: number[]): { shape: SymShape; error?: string } {
  const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const n = symNumel(inShape);
  const hole = target.indexOf(-1);
  if (hole < 0) {
    if (n !== null && n !== known) return { shape: [], error: `${n} elements do not fit shape [${target.join(', ')}]` };
    return { shape: [...target] };
  }
  if (known === 0) return { shape: [], error: `-1 is ambiguous in [${target.join(', ')}] (the other dims hold 0 elements)` };
  if (n === null) return { shape: target.map((d) => (d === -1 ? null : d)) };
  if (n % known !== 0) return { shape: [], error: `${n} elements do not fit shape [${target.join(', ')}]` };
  return { shape: target.map((d) => (d === -1 ? n / known : d)) };
}

const reshape: OpDef<ReshapeAttrs> = {
  name: 'reshape',
  inputs: ['x'],
  attrs: z.strictObject({ shape: z.array(intSchema).describe('new shape; one -1 is inferred, 0 is a literal zero-size dim') }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Reshape (NumPy semantics: one -1 inferred, 0 is a literal zero-size dim); the data is shared, not copied.',
  infer([x], attrs, ctx) {
    sameDtype([x!], ['x'], ANY, ctx);
    if (attrs.shape.filter((d) => d === -1).length > 1) failNode('INVALID_ATTRS', ctx, `shape [${attrs.shape.join(', ')}] has more than one -1`, attrAt('shape'));
    const bad = attrs.shape.find((d) => d < -1);
    if (bad !== undefined) failNode('INVALID_ATTRS', ctx, `shape [${attrs.shape.join(', ')}] has the negative dim ${bad}`, attrAt('shape'));
    const r = reshapeTarget(x!.shape, attrs.shape);
    if (r.error !== undefined) failNode('SHAPE_MISMATCH', ctx, `cannot reshape ${fmt(x!.shape)}: ${r.error}`);
    return { shape: r.shape, dtype: x!.dtype };
  },
  async run([x], attrs) {
    return { dtype: x!.dtype, shape: reshapeTarget([...x!.shape], attrs.shape).shape as number[], data: x!.data };
  },
  flops: () => 0,
  vjp: ({ e, inputs: [x], g }) => [reshapeToLike(e, g, x!)],
  jvp: ({ e, tangents: [t], attrs }) => e.op('reshape', [t!], { shape: attrs.shape }),
  vmap: batchReshape,
  aliases: 'always',
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { shape: [3, -1] }, note: '-1 inferred' },
    { inputs: [{ shape: [2, 3, 2] }], attrs: { shape: [12] } },
  ],
};

interface ShapeAttrs { shape: number[] }

const broadcastTo: OpDef<ShapeAttrs> = {
  name: 'broadcast_to',
  inputs: ['x'],
  attrs: z.strictObject({ shape: z.array(intSchema.min(0)).describe('target shape') }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Broadcast x to shape (np.broadcast_to).',
  infer([x], attrs, ctx) {
    sameDtype([x!], ['x'], ANY, ctx);
    const s = x!.shape, t = attrs.shape, off = t.length - s.length;
    const ok = off >= 0 && s.every((d, i) => d === null || d === 1 || d === t[off + i]);
    if (!ok) failNode('SHAPE_MISMATCH', ctx, `cannot broadcast ${fmt(s)} to ${fmt(t)}`);
    return { shape: [...t], dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    const data = await k.broadcastTo(x!.data, [...x!.shape], attrs.shape);
    return { dtype: x!.dtype, shape: [...attrs.shape], data };
  },
  flops: () => 0,
  vjp: ({ e, inputs: [x], g }) => [unbroadcast(e, g, x!)],
  jvp: ({ e, tangents: [t], attrs }) => e.op('broadcast_to', [t!], { shape: attrs.shape }),
  vmap({ b, inputs: [x], output }) {
    b.out('broadcast_to', [b.lift(x!, output.shape.length)], { shape: [b.K, ...output.shape] });
    return true;
  },
  samples: [
    { inputs: [{ shape: [3, 1] }], attrs: { shape: [2, 3, 4] }, note: 'new leading axis and a size-1 axis' },
  ],
};

interface SqueezeAttrs { axes: number | number[] | null }

function squeezeAxes(shape: SymShape, axes: number | number[] | null): number[] {
  if (axes === null) return shape.flatMap((d, i) => (d === 1 ? [i] : []));
  return normAxes(axes, shape.length);
}

const squeeze: OpDef<SqueezeAttrs> = {
  name: 'squeeze',
  inputs: ['x'],
  attrs: z.strictObject({
    axes: z.union([intSchema, z.array(intSchema), z.null()]).default(null).describe('size-1 axes to remove; null = all of them'),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Remove size-1 axes (all of them when axes is null).',
  conventions: ['naming an axis whose size is not 1 is SHAPE_MISMATCH'],
  infer([x], attrs, ctx) {
    sameDtype([x!], ['x'], ANY, ctx);
    const s = x!.shape;
    if (attrs.axes === null && s.includes(null)) {
      failNode('SHAPE_MISMATCH', ctx, `cannot tell which axes of ${fmt(s)} have size 1; give axes`);
    }
    const axes = attrs.axes === null ? squeezeAxes(s, null) : axesOrFail(attrs.axes, s.length, ctx);
    const bad = axes.find((a) => s[a] !== null && s[a] !== 1);
    if (bad !== undefined) failNode('SHAPE_MISMATCH', ctx, `axis ${bad} of ${fmt(s)} has size ${s[bad]}, not 1`);
    return { shape: s.filter((_, i) => !axes.includes(i)), dtype: x!.dtype };
  },
  async run([x], attrs) {
    const axes = squeezeAxes([...x!.shape], attrs.axes);
    return { dtype: x!.dtype, shape: x!.shape.filter((_, i) => !axes.includes(i)), data: x!.data };
  },
  flops: () => 0,
  vjp({ e, inputs: [x], g, attrs }) {
    if (attrs.axes === null) return [reshapeToLike(e, g, x!)];
    const axes = normAxes(attrs.axes, x!.shape.length);
    return [axes.length === 0 ? g : e.op('unsqueeze', [g], { axes })];
  },
  jvp: ({ e, tangents: [t], attrs }) => e.op('squeeze', [t!], { axes: attrs.axes }),
  vmap: batchReshape,
  aliases: 'always',
  samples: [
    { inputs: [{ shape: [2, 1, 3, 1] }], attrs: { axes: null }, note: 'all size-1 axes' },
    { inputs: [{ shape: [2, 1, 3, 1] }], attrs: { axes: -1 }, note: 'negative axis' },
  ],
};

interface UnsqueezeAttrs { axes: number | number[] }

function unsqueezeShape<D>(shape: readonly D[], axes: number[]): (D | 1)[] {
  const out: (D | 1)[] = [];
  let j = 0;
  for (let i = 0; i < shape.length + axes.length; i++) out.push(axes.includes(i) ? 1 : shape[j++]!);
  return out;
}

const unsqueeze: OpDef<UnsqueezeAttrs> = {
  name: 'unsqueeze',
  inputs: ['x'],
  attrs: z.strictObject({
    axes: z.union([intSchema, z.array(intSchema)]).describe('positions of the new size-1 axes in the output'),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Insert size-1 axes at the given positions of the output (np.expand_dims).',
  infer([x], attrs, ctx) {
    sameDtype([x!], ['x'], ANY, ctx);
    const n = typeof attrs.axes === 'number' ? 1 : attrs.axes.length;
    const axes = axesOrFail(attrs.axes, x!.shape.length + n, ctx);
    return { shape: unsqueezeShape(x!.shape, axes), dtype: x!.dtype };
  },
  async run([x], attrs) {
    const n = typeof attrs.axes === 'number' ? 1 : attrs.axes.length;
    const axes = normAxes(attrs.axes, x!.shape.length + n);
    return { dtype: x!.dtype, shape: unsqueezeShape(x!.shape, axes), data: x!.data };
  },
  flops: () => 0,
  vjp({ e, inputs: [x], g, attrs }) {
    const n = typeof attrs.axes === 'number' ? 1 : attrs.axes.length;
    if (n === 0) return [g];
    return [e.op('squeeze', [g], { axes: normAxes(attrs.axes, x!.shape.length + n) })];
  },
  jvp: ({ e, tangents: [t], attrs }) => e.op('unsqueeze', [t!], { axes: attrs.axes }),
  vmap: batchReshape,
  aliases: 'always',
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { axes: [0, -1] }, note: 'front and back' },
    { inputs: [{ shape: [3] }], attrs: { axes: 1 } },
  ],
};

interface PadAttrs { pads: [number, number][]; value: number }

const BIG = Number.MAX_SAFE_INTEGER;

const pad: OpDef<PadAttrs> = {
  name: 'pad',
  inputs: ['x'],
  attrs: z.strictObject({
    pads: z.array(z.tuple([intSchema, intSchema])).describe('[[before, after], ...], one pair per axis, non-negative'),
    value: z.number().default(0).describe('constant fill value'),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Constant padding: pads[k] = [before, after] elements of value around axis k.',
  infer([x], attrs, ctx) {
    const dtype = sameDtype([x!], ['x'], ANY, ctx);
    const rank = x!.shape.length;
    if (attrs.pads.length !== rank) failNode('INVALID_ATTRS', ctx, `pads has ${attrs.pads.length} pairs for ${fmt(x!.shape)} (rank ${rank}); give one [before, after] per axis`, attrAt('pads'));
    const neg = attrs.pads.findIndex(([b, a]) => b < 0 || a < 0);
    if (neg >= 0) failNode('INVALID_ATTRS', ctx, `pads for axis ${neg} are negative: [${attrs.pads[neg]!.join(', ')}]`, attrAt('pads'));
    if (dtype !== 'FP32' && dtype !== 'FP64' && !Number.isInteger(attrs.value)) failNode('INVALID_ATTRS', ctx, `value ${attrs.value} is not representable in ${dtype}`, attrAt('value'));
    if (dtype === 'BOOL' && attrs.value !== 0 && attrs.value !== 1) failNode('INVALID_ATTRS', ctx, `value ${attrs.value} is not a BOOL (0 or 1)`, attrAt('value'));
    return { shape: x!.shape.map((d, i) => (d === null ? null : d + attrs.pads[i]![0] + attrs.pads[i]![1])), dtype };
  },
  async run([x], attrs, k) {
    const data = await k.pad(x!.data, [...x!.shape], attrs.pads, attrs.value);
    return { dtype: x!.dtype, shape: x!.shape.map((d, i) => d + attrs.pads[i]![0] + attrs.pads[i]![1]), data };
  },
  flops: (_i, out) => elementsOf(out.shape),
  vjp({ e, inputs: [x], g, attrs }) {
    const starts = attrs.pads.map(([b]) => b);
    const ends = attrs.pads.map(([b, a], i) => {
      const d = x!.shape[i];
      return d !== null && d !== undefined ? b + d : a > 0 ? -a : BIG;
    });
    return [e.op('slice', [g], { starts, ends, axes: null, steps: null })];
  },
  jvp: ({ e, tangents: [t], attrs }) => e.op('pad', [t!], { pads: attrs.pads, value: 0 }),
  vmap({ b, inputs, attrs }) {
    if (inputs.length !== 1) b.refuse('pad takes one input');
    b.out('pad', [inputs[0]!.name], { ...attrs, pads: [[0, 0], ...(attrs.pads as unknown[])] });
    return true;
  },
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { pads: [[1, 0], [2, 1]], value: 0.5 } },
  ],
};

interface AxisAttrs { axis: number }

function concatInfer(xs: { shape: SymShape }[], axis: number, ctx: Parameters<OpDef['infer']>[2]): SymShape {
  const first = xs[0]!.shape;
  const out = [...first];
  for (let i = 1; i < xs.length; i++) {
    const s = xs[i]!.shape;
    const same = s.length === first.length && s.every((d, j) => j === axis || d === null || out[j] === null || d === out[j]);
    if (!same) failNode('SHAPE_MISMATCH', ctx, `xs[${i}] ${fmt(s)} does not match xs[0] ${fmt(first)} outside axis ${axis}`, inputAt(i));
    s.forEach((d, j) => { if (j !== axis && out[j] === null) out[j] = d; });
    out[axis] = out[axis] === null || s[axis] === null ? null : out[axis]! + s[axis]!;
  }
  return out;
}

const concat: OpDef<AxisAttrs> = {
  name: 'concat',
  inputs: { variadic: 'xs', min: 1 },
  attrs: z.strictObject({ axis: intSchema.default(0) }),
  outputDatatype: 'same as xs',
  differentiable: true,
  doc: 'Concatenate along an existing axis (np.concatenate).',
  infer(xs, attrs, ctx) {
    const dtype = sameDtype(xs, xs.map((_, i) => `xs[${i}]`), ANY, ctx);
    if (xs[0]!.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, 'cannot concatenate rank-0 values');
    const axis = axisOrFail(attrs.axis, xs[0]!.shape.length, ctx);
    return { shape: concatInfer(xs, axis, ctx), dtype };
  },
  async run(xs, attrs, k) {
    const axis = normAxis(attrs.axis, xs[0]!.shape.length);
    const shapes = xs.map((x) => [...x.shape]);
    const data = await k.concat(xs.map((x) => x.data), shapes, axis);
    const shape = [...shapes[0]!];
    shape[axis] = shapes.reduce((p, s) => p + s[axis]!, 0);
    return { dtype: xs[0]!.dtype, shape, data };
  },
  flops: () => 0,
  vjp({ e, inputs, g, attrs }) {
    const axis = normAxis(attrs.axis, inputs[0]!.shape.length);
    const sizes = inputs.map((x) => x.shape[axis]);
    if (sizes.some((d) => d === null)) {
      return inputs.map((_, index) => e.op('concat_part', [g, ...inputs], { axis, index }));
    }
    let off = 0;
    return sizes.map((d) => {
      const r = e.op('slice', [g], { starts: [off], ends: [off + d!], axes: [axis], steps: null });
      off += d!;
      return r;
    });
  },
  jvp: ({ e, inputs, tangents, attrs }) => e.op('concat', inputs.map((x, i) => orZeros(e, tangents[i] ?? null, x)), { axis: attrs.axis }),
  vmap: batchJoin('concat', false),
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }], attrs: { axis: -1 }, note: 'three inputs, negative axis' },
    { inputs: [{ shape: [1, 2] }, { shape: [2, 2] }], attrs: { axis: 0 } },
  ],
};

interface PartAttrs { axis: number; index: number }

/** The part of g (a concat's cotangent) that came from xs[index]; xs only supply their shapes. */
const concatPart: OpDef<PartAttrs> = {
  name: 'concat_part',
  inputs: { variadic: 'g_then_xs', min: 2 },
  internal: true,
  attrs: z.strictObject({ axis: intSchema, index: intSchema.min(0) }),
  outputDatatype: 'same as g',
  differentiable: true,
  doc: 'Slice of g along axis holding the part of concat(xs) that came from xs[index].',
  infer([g, ...xs], attrs, ctx) {
    const axis = axisOrFail(attrs.axis, g!.shape.length, ctx);
    if (attrs.index >= xs.length) failNode('INVALID_ATTRS', ctx, `index ${attrs.index} is out of range for ${xs.length} parts`, attrAt('index'));
    // g is concat(xs) along axis: the parts match g outside the axis and their sizes along it add up to g's
    let total: number | null = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      if (x.dtype !== g!.dtype) failNode('DATATYPE_MISMATCH', ctx, `xs[${i}] is ${x.dtype} but g is ${g!.dtype}`, inputAt(i + 1));
      const expected = g!.shape.map((d, j) => (j === axis ? x.shape[j] ?? null : d));
      shapeOrFail(x.shape, expected, ctx, `xs[${i}] (a part of g ${fmt(g!.shape)} along axis ${axis})`, inputAt(i + 1));
      const d = x.shape[axis];
      total = total === null || d === null || d === undefined ? null : total + d;
    }
    const size = g!.shape[axis];
    if (total !== null && size !== null && size !== undefined && total !== size) {
      failNode('SHAPE_MISMATCH', ctx, `the parts have ${total} elements along axis ${axis} together, g has ${size}`, inputAt(0));
    }
    const shape = [...g!.shape];
    shape[axis] = xs[attrs.index]!.shape[axis]!;
    return { shape, dtype: g!.dtype };
  },
  async run([g, ...xs], attrs, k) {
    const axis = normAxis(attrs.axis, g!.shape.length);
    let off = 0;
    for (let i = 0; i < attrs.index; i++) off += xs[i]!.shape[axis]!;
    const outShape = [...g!.shape];
    outShape[axis] = xs[attrs.index]!.shape[axis]!;
    const starts = g!.shape.map((_, i) => (i === axis ? off : 0));
    const data = await k.slice(g!.data, [...g!.shape], starts, starts.map(() => 1), outShape);
    return { dtype: g!.dtype, shape: outShape, data };
  },
  flops: () => 0,
  vjp({ e, inputs: [, ...xs], g, attrs }) {
    const parts = xs.map((x, i) => (i === attrs.index ? g : e.op('zeros_like', [x])));
    return [e.op('concat', parts, { axis: attrs.axis }), ...xs.map(() => null)];
  },
  jvp: ({ e, inputs: [, ...xs], tangents: [t], attrs }) => (t ? e.op('concat_part', [t, ...xs], { ...attrs }) : null),
  // the xs only supply their sizes along the axis: a batched g is sliced, past its batch axis
  vmap({ b, inputs: [g, ...xs], attrs }) {
    const axis = b.axis(attrs.axis, g!.shape.length, 0);
    const index = attrs.index as number;
    let start = 0;
    for (let i = 0; i < index; i++) start += xs[i]!.shape[axis]!;
    // an unbatched g gives every member the same part, whichever parts are batched
    b.out('slice', [g!.name], { starts: [start], ends: [start + xs[index]!.shape[axis]!], axes: [g!.batched ? axis + 1 : axis] });
    return g!.batched;
  },
  samples: [
    { inputs: [{ shape: [2, 6] }, { shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }], attrs: { axis: 1, index: 2 } },
  ],
};

const stack: OpDef<AxisAttrs> = {
  name: 'stack',
  inputs: { variadic: 'xs', min: 1 },
  attrs: z.strictObject({ axis: intSchema.default(0) }),
  outputDatatype: 'same as xs',
  differentiable: true,
  doc: 'Stack equally shaped values along a new axis (np.stack).',
  infer(xs, attrs, ctx) {
    const dtype = sameDtype(xs, xs.map((_, i) => `xs[${i}]`), ANY, ctx);
    const first = xs[0]!.shape;
    const axis = axisOrFail(attrs.axis, first.length + 1, ctx);
    const shape = [...first];
    xs.forEach((x, i) => {
      const same = x.shape.length === first.length && x.shape.every((d, j) => d === null || shape[j] === null || d === shape[j]);
      if (!same) failNode('SHAPE_MISMATCH', ctx, `xs[${i}] ${fmt(x.shape)} differs from xs[0] ${fmt(first)}; stack needs equal shapes`, inputAt(i));
      x.shape.forEach((d, j) => { if (shape[j] === null) shape[j] = d; });
    });
    shape.splice(axis, 0, xs.length);
    return { shape, dtype };
  },
  async run(xs, attrs, k) {
    const rank = xs[0]!.shape.length;
    const axis = normAxis(attrs.axis, rank + 1);
    const shapes = xs.map((x) => { const s = [...x.shape]; s.splice(axis, 0, 1); return s; });
    const data = await k.concat(xs.map((x) => x.data), shapes, axis);
    const shape = [...xs[0]!.shape];
    shape.splice(axis, 0, xs.length);
    return { dtype: xs[0]!.dtype, shape, data };
  },
  flops: () => 0,
  vjp({ e, inputs, g, attrs }) {
    const axis = normAxis(attrs.axis, inputs[0]!.shape.length + 1);
    return inputs.map((_, i) => e.op('squeeze', [e.op('slice', [g], { starts: [i], ends: [i + 1], axes: [axis], steps: null })], { axes: [axis] }));
  },
  jvp: ({ e, inputs, tangents, attrs }) => e.op('stack', inputs.map((x, i) => orZeros(e, tangents[i] ?? null, x)), { axis: attrs.axis }),
  vmap: batchJoin('stack', true),
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [2, 3] }], attrs: { axis: -1 }, note: 'new last axis' },
    { inputs: [{ shape: [3] }, { shape: [3] }, { shape: [3] }], attrs: { axis: 0 } },
  ],
};

export const ops: OpDef[] = [reshape, broadcastTo, squeeze, unsqueeze, pad, concat, stack, concatPart, ...indexOps];
