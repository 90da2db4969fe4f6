/**
 * Pooling over the trailing 1-3 spatial axes of a channels-first tensor (N, C, *spatial): max_pool and avg_pool, and
 * the internal ops their derivatives are written with. The two pairs close under differentiation, so derivatives of
 * every order are graphs of the same four ops:
 *
 *   max_pool_grad(g, x)    zeros of x's shape with g added at the position max pooling of x picks in each window
 *   max_pool_gather(h, x)  h read at those positions (pooled shape): max_pool's JVP and max_pool_grad's VJP
 *   avg_pool_grad(g, x)    each window's g / divisor spread over the window (x gives the shape): avg_pool's VJP
 *
 * The picked positions depend on x only through comparisons, so x gets no gradient through the internal ops.
 */
import { z } from 'zod';
import type { FloatArray } from '../kernels.types.js';
import type { Dim, SymShape } from '../tensor/shape.js';
import { poolVmap } from './batching_nn.js';
import type { InferContext, OpDef, OpSample, ValueMeta } from './types.js';
import { attrAt, failNode, FP, fmt, inputAt, intSchema, sameDtype, shapesAgree } from './common.js';
import { kernelExtent, windowPositions } from './spatial.js';

interface PoolAttrs {
  kernel_shape: number[];
  strides: number[] | null;
  pads: [number, number][] | null;
  ceil_mode: boolean;
}
export interface MaxPoolAttrs extends PoolAttrs { dilations: number[] | null }
export interface AvgPoolAttrs extends PoolAttrs { count_include_pad: boolean }

const positive = intSchema.min(1);
const common = {
  kernel_shape: z.array(positive).min(1).max(3).describe('window size per spatial axis (1 to 3 axes)'),
  strides: z.union([z.array(positive), z.null()]).default(null).describe('step per spatial axis; null or omitted = kernel_shape'),
  pads: z.union([z.array(z.tuple([intSchema.min(0), intSchema.min(0)])), z.null()]).default(null)
    .describe('[[before, after], ...] per spatial axis, each smaller than the kernel; null or omitted = no padding'),
  ceil_mode: z.boolean().default(false).describe('round the output length up; a last window that would start in the right padding is dropped'),
};
const maxSchema = z.strictObject({
  ...common,
  dilations: z.union([z.array(positive), z.null()]).default(null).describe('spacing of the window elements per spatial axis; null or omitted = 1'),
});
const avgSchema = z.strictObject({
  ...common,
  count_include_pad: z.boolean().default(false).describe('divide by the window size including padding (never the positions beyond the declared pads)'),
});

/** The attrs with every per-axis list spelled out. */
interface Window {
  kernel: number[];
  strides: number[];
  pads: [number, number][];
  dilations: number[];
}

function windowOf(a: PoolAttrs): Window {
  const k = a.kernel_shape;
  return {
    kernel: [...k],
    strides: a.strides ?? [...k],
    pads: a.pads ?? k.map((): [number, number] => [0, 0]),
    dilations: ('dilations' in a ? (a as MaxPoolAttrs).dilations : null) ?? k.map(() => 1),
  };
}

/** Attribute rules beyond the schema: one entry per spatial axis, and pads smaller than the kernel (as PyTorch). */
function checkWindow(a: PoolAttrs, ctx: InferContext): Window {
  const w = windowOf(a);
  const n = w.kernel.length;
  const lists: [string, unknown[] | null][] = [['strides', a.strides], ['pads', a.pads], ['dilations', 'dilations' in a ? (a as MaxPoolAttrs).dilations : null]];
  for (const [name, list] of lists) {
    if (list !== null && list.length !== n) {
      failNode('INVALID_ATTRS', ctx, `${name} has ${list.length} entries but kernel_shape [${w.kernel.join(', ')}] has ${n} spatial axes`, attrAt(name));
    }
  }
  w.pads.forEach(([b, e], i) => {
    if (b >= w.kernel[i]! || e >= w.kernel[i]!) {
      failNode('INVALID_ATTRS', ctx, `pads [${b}, ${e}] on spatial axis ${i} must be smaller than the kernel size ${w.kernel[i]}`, attrAt('pads'));
    }
  });
  return w;
}

function pooledShape(x: { shape: readonly Dim[] }, a: PoolAttrs, ctx: InferContext): SymShape {
  const w = checkWindow(a, ctx);
  const sp = w.kernel.length;
  if (x.shape.length !== sp + 2) {
    failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} must be (N, C) followed by ${sp} spatial ${sp === 1 ? 'axis' : 'axes'} for kernel_shape [${w.kernel.join(', ')}]`, inputAt(0));
  }
  const out: Dim[] = [x.shape[0]!, x.shape[1]!];
  for (let i = 0; i < sp; i++) {
    const n = x.shape[2 + i]!;
    if (n === null) {
      out.push(null);
      continue;
    }
    if (n === 0) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} has an empty spatial axis ${i}`, inputAt(0));
    const len = windowPositions(n, w.kernel[i]!, w.strides[i]!, w.pads[i]!, w.dilations[i]!, a.ceil_mode);
    if (len === undefined) {
      const [b, e] = w.pads[i]!;
      const extent = kernelExtent(w.kernel[i]!, w.dilations[i]!);
      failNode('SHAPE_MISMATCH', ctx, `the kernel (extent ${extent} on spatial axis ${i}) is larger than the padded input (${n} + ${b} + ${e} = ${n + b + e}) of x ${fmt(x.shape)}`, inputAt(0));
    }
    out.push(len);
  }
  return out;
}

const elements = (s: readonly Dim[]): number => s.reduce<number>((p, d) => p * (d ?? 0), 1);
const windowSize = (a: PoolAttrs): number => a.kernel_shape.reduce((p, k) => p * k, 1);

/** Distinct values (a fixed permutation of an even grid) so max pooling has no ties and finite differences hold. */
function distinct(shape: number[], seed = 7): number[] {
  const n = elements(shape);
  let step = seed * 2 + 1;
  while (gcd(step, n) !== 1) step += 2;
  return Array.from({ length: n }, (_, i) => -2 + (4 * ((i * step) % n) + 1) / n);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

type MaxWindowArgs = [number[], number[], [number, number][], number[], boolean];

function maxArgs(a: MaxPoolAttrs): MaxWindowArgs {
  const w = windowOf(a);
  return [w.kernel, w.strides, w.pads, w.dilations, a.ceil_mode];
}

function avgArgs(a: AvgPoolAttrs): [number[], number[], [number, number][], boolean, boolean] {
  const w = windowOf(a);
  return [w.kernel, w.strides, w.pads, a.ceil_mode, a.count_include_pad];
}

const MAX_CONVENTIONS = [
  'the gradient goes to the first maximum of each window in row-major window order (PyTorch); a NaN wins',
  'strides default to kernel_shape; pads are [[before, after], ...] and each must be smaller than the kernel',
  'ceil_mode: a last window that would start in the right padding is dropped',
  'a window of padding only (possible with dilations) gives -Infinity and no gradient',
];

const maxSamples: OpSample<MaxPoolAttrs>[] = [
  {
    inputs: [{ shape: [2, 2, 7], values: distinct([2, 2, 7]) }],
    attrs: { kernel_shape: [3], strides: [2], pads: [[1, 1]], dilations: null, ceil_mode: false }, note: '1-d, padding, overlapping windows',
  },
  {
    inputs: [{ shape: [1, 2, 5, 5], values: distinct([1, 2, 5, 5], 3) }],
    attrs: { kernel_shape: [2, 2], strides: null, pads: null, dilations: null, ceil_mode: true }, note: '2-d, default strides, ceil_mode',
  },
  {
    inputs: [{ shape: [1, 1, 6, 6], values: distinct([1, 1, 6, 6], 5) }],
    attrs: { kernel_shape: [2, 3], strides: [1, 2], pads: [[1, 0], [0, 2]], dilations: [2, 1], ceil_mode: false }, note: 'dilation, asymmetric pads',
  },
  {
    inputs: [{ shape: [1, 2, 3, 4, 4], values: distinct([1, 2, 3, 4, 4], 11) }],
    attrs: { kernel_shape: [2, 2, 2], strides: [1, 2, 2], pads: null, dilations: null, ceil_mode: false }, note: '3-d',
  },
];

const maxPool: OpDef<MaxPoolAttrs> = {
  name: 'max_pool',
  vmap: poolVmap('max_pool'),
  inputs: ['x'],
  attrs: maxSchema,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Maximum over each window of the spatial axes of x (N, C, *spatial), 1 to 3 spatial axes.',
  conventions: MAX_CONVENTIONS,
  check: (attrs, ctx) => void checkWindow(attrs, ctx),
  infer([x], attrs, ctx) {
    sameDtype([x!], ['x'], FP, ctx);
    return { shape: pooledShape(x!, attrs, ctx), dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    const shape = pooledShape(x!, attrs, RUN_CTX) as number[];
    const data = await k.maxPool(x!.data as FloatArray, [...x!.shape], ...maxArgs(attrs));
    return { dtype: x!.dtype, shape, data };
  },
  flops: (_i, out, attrs) => elements(out.shape) * windowSize(attrs),
  vjp: ({ e, inputs: [x], g, attrs }) => [e.op('max_pool_grad', [g, x!], { ...attrs })],
  jvp: ({ e, inputs: [x], tangents: [t], attrs }) => e.op('max_pool_gather', [t!, x!], { ...attrs }),
  samples: maxSamples,
};

/** infer already ran on these shapes; run re-derives the output shape without a node to name. */
const RUN_CTX: InferContext = { node: '(run)', op: 'pool', path: 'run' };

const maxPoolGrad: OpDef<MaxPoolAttrs> = {
  name: 'max_pool_grad',
  vmap: poolVmap('max_pool_grad'),
  inputs: ['g', 'x'],
  internal: true,
  attrs: maxSchema,
  outputDatatype: 'same as g',
  differentiable: true,
  doc: "Zeros of x's shape with g (max_pool's output shape) added at the position max_pool of x picks in each window (the VJP of max_pool).",
  check: (attrs, ctx) => void checkWindow(attrs, ctx),
  infer([g, x], attrs, ctx) {
    const dtype = sameDtype([g!, x!], ['g', 'x'], FP, ctx);
    const pooled = pooledShape(x!, attrs, ctx);
    if (!shapesAgree(g!.shape, pooled)) failNode('SHAPE_MISMATCH', ctx, `g ${fmt(g!.shape)} must have max_pool's output shape ${fmt(pooled)} for x ${fmt(x!.shape)}`, inputAt(0));
    return { shape: [...x!.shape], dtype };
  },
  async run([g, x], attrs, k) {
    const data = await k.maxPoolScatter(g!.data as FloatArray, x!.data as FloatArray, [...x!.shape], ...maxArgs(attrs));
    return { dtype: x!.dtype, shape: [...x!.shape], data };
  },
  flops: ([g], _o, attrs) => elements(g!.shape) * windowSize(attrs),
  vjp: ({ e, inputs: [, x], g, attrs }) => [e.op('max_pool_gather', [g, x!], { ...attrs }), null],
  jvp: ({ e, inputs: [, x], tangents: [t], attrs }) => (t ? e.op('max_pool_grad', [t, x!], { ...attrs }) : null),
  samples: [
    {
      inputs: [{ shape: [1, 1, 5, 3] }, { shape: [1, 1, 6, 6], values: distinct([1, 1, 6, 6], 5) }],
      attrs: maxSamples[2]!.attrs!, note: 'dilation, asymmetric pads',
    },
    {
      inputs: [{ shape: [2, 2, 4] }, { shape: [2, 2, 7], values: distinct([2, 2, 7]) }],
      attrs: maxSamples[0]!.attrs!, note: '1-d, overlapping windows',
    },
  ],
};

const maxPoolGather: OpDef<MaxPoolAttrs> = {
  name: 'max_pool_gather',
  vmap: poolVmap('max_pool_gather'),
  inputs: ['h', 'x'],
  internal: true,
  attrs: maxSchema,
  outputDatatype: 'same as h',
  differentiable: true,
  doc: "h (x's shape) read at the position max_pool of x picks in each window, 0 for a window of padding only (the JVP of max_pool).",
  check: (attrs, ctx) => void checkWindow(attrs, ctx),
  infer([h, x], attrs, ctx) {
    const dtype = sameDtype([h!, x!], ['h', 'x'], FP, ctx);
    if (!shapesAgree(h!.shape, x!.shape)) failNode('SHAPE_MISMATCH', ctx, `h ${fmt(h!.shape)} must have the shape of x ${fmt(x!.shape)}`, inputAt(0));
    return { shape: pooledShape(x!, attrs, ctx), dtype };
  },
  async run([h, x], attrs, k) {
    const shape = pooledShape(x!, attrs, RUN_CTX) as number[];
    const data = await k.maxPoolGather(h!.data as FloatArray, x!.data as FloatArray, [...x!.shape], ...maxArgs(attrs));
    return { dtype: x!.dtype, shape, data };
  },
  flops: (_i, out, attrs) => elements(out.shape) * windowSize(attrs),
  vjp: ({ e, inputs: [, x], g, attrs }) => [e.op('max_pool_grad', [g, x!], { ...attrs }), null],
  jvp: ({ e, inputs: [, x], tangents: [t], attrs }) => (t ? e.op('max_pool_gather', [t, x!], { ...attrs }) : null),
  samples: [
    {
      inputs: [{ shape: [1, 2, 5, 5] }, { shape: [1, 2, 5, 5], values: distinct([1, 2, 5, 5], 3) }],
      attrs: maxSamples[1]!.attrs!, note: 'ceil_mode',
    },
  ],
};

const avgSamples: OpSample<AvgPoolAttrs>[] = [
  {
    inputs: [{ shape: [2, 3, 6] }],
    attrs: { kernel_shape: [3], strides: [2], pads: [[1, 1]], ceil_mode: false, count_include_pad: true }, note: '1-d, count_include_pad',
  },
  {
    inputs: [{ shape: [1, 2, 6, 5] }],
    attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [[1, 1], [1, 1]], ceil_mode: true, count_include_pad: true },
    note: 'ceil_mode window past the pads, count_include_pad',
  },
  {
    inputs: [{ shape: [2, 1, 4, 5] }],
    attrs: { kernel_shape: [2, 2], strides: null, pads: null, ceil_mode: true, count_include_pad: false }, note: 'default strides, partial last window',
  },
  {
    inputs: [{ shape: [1, 2, 3, 4, 4] }],
    attrs: { kernel_shape: [3, 2, 2], strides: [1, 2, 2], pads: [[1, 1], [0, 0], [1, 0]], ceil_mode: false, count_include_pad: false }, note: '3-d, asymmetric pads',
  },
];

const avgPool: OpDef<AvgPoolAttrs> = {
  name: 'avg_pool',
  vmap: poolVmap('avg_pool'),
  inputs: ['x'],
  attrs: avgSchema,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Mean over each window of the spatial axes of x (N, C, *spatial), 1 to 3 spatial axes.',
  conventions: [
    'the divisor counts the input positions of the window; with count_include_pad also the padding, but never the positions ceil_mode adds beyond the declared pads',
    'strides default to kernel_shape; pads are [[before, after], ...] and each must be smaller than the kernel',
    'ceil_mode: a last window that would start in the right padding is dropped',
  ],
  check: (attrs, ctx) => void checkWindow(attrs, ctx),
  infer([x], attrs, ctx) {
    sameDtype([x!], ['x'], FP, ctx);
    return { shape: pooledShape(x!, attrs, ctx), dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    const shape = pooledShape(x!, attrs, RUN_CTX) as number[];
    const data = await k.avgPool(x!.data as FloatArray, [...x!.shape], ...avgArgs(attrs));
    return { dtype: x!.dtype, shape, data };
  },
  flops: (_i, out, attrs) => elements(out.shape) * windowSize(attrs),
  vjp: ({ e, inputs: [x], g, attrs }) => [e.op('avg_pool_grad', [g, x!], { ...attrs })],
  jvp: ({ e, tangents: [t], attrs }) => e.op('avg_pool', [t!], { ...attrs }),
  samples: avgSamples,
};

const avgPoolGrad: OpDef<AvgPoolAttrs> = {
  name: 'avg_pool_grad',
  vmap: poolVmap('avg_pool_grad'),
  inputs: ['g', 'x'],
  internal: true,
  attrs: avgSchema,
  outputDatatype: 'same as g',
  differentiable: true,
  doc: "Each window's g / divisor added over the window, in zeros of x's shape (x gives only the shape): the VJP of avg_pool.",
  check: (attrs, ctx) => void checkWindow(attrs, ctx),
  infer([g, x], attrs, ctx) {
    const dtype = sameDtype([g!, x!], ['g', 'x'], FP, ctx);
    const pooled = pooledShape(x!, attrs, ctx);
    if (!shapesAgree(g!.shape, pooled)) failNode('SHAPE_MISMATCH', ctx, `g ${fmt(g!.shape)} must have avg_pool's output shape ${fmt(pooled)} for x ${fmt(x!.shape)}`, inputAt(0));
    return { shape: [...x!.shape], dtype };
  },
  async run([g, x], attrs, k) {
    const data = await k.avgPoolBackward(g!.data as FloatArray, [...x!.shape], ...avgArgs(attrs));
    return { dtype: g!.dtype, shape: [...x!.shape], data };
  },
  flops: ([g], _o, attrs) => elements(g!.shape) * windowSize(attrs),
  vjp: ({ e, g, attrs }) => [e.op('avg_pool', [g], { ...attrs }), null],
  jvp: ({ e, inputs: [, x], tangents: [t], attrs }) => (t ? e.op('avg_pool_grad', [t, x!], { ...attrs }) : null),
  samples: [
    { inputs: [{ shape: [1, 2, 4, 3] }, { shape: [1, 2, 6, 5] }], attrs: avgSamples[1]!.attrs!, note: 'ceil_mode past the pads' },
    { inputs: [{ shape: [1, 2, 3, 2, 2] }, { shape: [1, 2, 3, 4, 4] }], attrs: avgSamples[3]!.attrs!, note: '3-d' },
  ],
};

export const ops: OpDef[] = [maxPool, avgPool, maxPoolGrad, maxPoolGather, avgPoolGrad];
