/**
 * Convolution, channels first with 1 to 3 spatial axes (inferred from w's rank): `conv` (ONNX Conv, torch convNd)
 * and `conv_transpose` (ONNX ConvTranspose, torch conv_transposeNd), plus the internal ops their derivative rules use:
 *
 *   conv_weight_grad(x, g, w)  d<g, conv(x, w)>/dw, the weight gradient; w supplies only its shape
 *   conv_input_grad(g, w, x)   d<g, conv(x, w)>/dx: conv_transpose of g with the output padding that gives back x's
 *                              spatial size, read from x at run time (x supplies only its shape). Rules emit it only
 *                              where that size is unknown (a symbolic transform with null spatial dims); with known
 *                              sizes they emit conv_transpose with the output_padding spelled out.
 *
 * conv is bilinear in (x, w); conv_transpose is its adjoint in x and conv_weight_grad its adjoint in w. So every
 * derivative rule is made of these four ops again (plus sum, slice, pad), and derivatives of any order stay
 * convolutions that the native kernels run as vol2col + GEMM.
 */
import { z } from 'zod';
import type { FloatArray } from '../kernels.types.js';
import type { SymShape } from '../tensor/shape.js';
import { convVmap } from './batching_nn.js';
import type { Emitter, InferContext, OpDef, Ref, ValueMeta } from './types.js';
import { attrAt, broadcastToLike, failNode, FP, fmt, inputAt, intSchema, sameDtype, shapesAgree } from './common.js';
import {
  kernelExtent, MAX_SPATIAL_ATTR, padPairs, padsOrFail, padsSchema, perAxis, perAxisOrFail, perAxisSchema, windowPositions,
  type PadsAttr, type PerAxis,
} from './spatial.js';

export interface ConvAttrs {
  strides: PerAxis;
  pads: PadsAttr;
  dilations: PerAxis;
  groups: number;
}

interface ConvTransposeAttrs extends ConvAttrs {
  output_padding: PerAxis;
}

/** The attrs with every per-axis entry spelled out: what the kernels take and what derivative rules emit. */
interface Geometry {
  strides: number[];
  pads: [number, number][];
  dilations: number[];
  groups: number;
}

const convAttrShape = {
  strides: perAxisSchema(1, 'strides (>= 1)'),
  pads: padsSchema,
  dilations: perAxisSchema(1, 'kernel dilations (>= 1)'),
  groups: intSchema.default(1).describe('channel groups (>= 1): input and output channels split into groups convolved separately; groups = C is depthwise'),
};
const convAttrs = z.strictObject(convAttrShape);
const convTransposeAttrs = z.strictObject({
  ...convAttrShape,
  output_padding: perAxisSchema(0, 'extra output size at the high end, before pads crop (0 <= output_padding < max(stride, dilation))'),
});

const CONVENTIONS = [
  'x is (N, C, *spatial) with 1 to 3 spatial axes, as many as w has after its first two dims',
  'strides, dilations and output_padding take one int per spatial axis, or one int for every axis (PyTorch\'s shorthand); pads takes [[before, after], ...] per spatial axis (asymmetric allowed), or one int for every side; a flat list of ints is refused for pads (PyTorch and ONNX read it differently)',
  'groups split the channels into contiguous groups convolved separately (C and O multiples of groups); groups = C is depthwise',
];

const prod = (s: SymShape): number => s.reduce<number>((p, d) => p * (d ?? 0), 1);
const known = (s: SymShape): s is number[] => s.every((d) => d !== null);

function spatialRank(w: { shape: readonly unknown[] }): number {
  return w.shape.length - 2;
}

function geometry(attrs: ConvAttrs, nd: number): Geometry {
  return { strides: perAxis(attrs.strides, nd), pads: padPairs(attrs.pads, nd), dilations: perAxis(attrs.dilations, nd), groups: attrs.groups };
}

function geometryAttrs(g: Geometry): Record<string, unknown> {
  return { strides: g.strides, pads: g.pads, dilations: g.dilations, groups: g.groups };
}

/** Where the x and w of a conv-shaped rule sit among the node's inputs (conv: 0 and 1), for error paths. */
interface Slots {
  x: number;
  w: number;
}

/** Rank checks: w is (O, C/groups | O/groups, *kernel) with 1-3 spatial axes and x has the same rank. */
function ranksOrFail(x: ValueMeta, w: ValueMeta, ctx: InferContext, at: Slots, wLayout: string): number {
  const nd = spatialRank(w);
  if (nd < 1 || nd > 3) {
    failNode('SHAPE_MISMATCH', ctx, `w ${fmt(w.shape)} must be ${wLayout} with 1 to 3 spatial axes (rank 3 to 5)`, inputAt(at.w));
  }
  if (x.shape.length !== nd + 2) {
    failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} must have rank ${nd + 2} (N, C and ${nd} spatial axes) to match w ${fmt(w.shape)}`, inputAt(at.x));
  }
  const empty = w.shape.slice(2).findIndex((k) => k === 0);
  if (empty >= 0) failNode('SHAPE_MISMATCH', ctx, `w ${fmt(w.shape)} has an empty kernel along spatial axis ${empty}`, inputAt(at.w));
  return nd;
}

function geometryOrFail(attrs: ConvAttrs, nd: number, ctx: InferContext, shapes: string): Geometry {
  const g: Geometry = {
    strides: perAxisOrFail(attrs.strides, nd, 'strides', 1, ctx, shapes),
    pads: padsOrFail(attrs.pads, nd, ctx, shapes),
    dilations: perAxisOrFail(attrs.dilations, nd, 'dilations', 1, ctx, shapes),
    groups: attrs.groups,
  };
  if (g.groups < 1 || g.groups > MAX_SPATIAL_ATTR) failNode('INVALID_ATTRS', ctx, `groups ${g.groups} must be >= 1 (${shapes})`, attrAt('groups'));
  return g;
}

function groupsDivideOrFail(channels: number | null, what: string, g: Geometry, ctx: InferContext, shapes: string): void {
  if (channels !== null && channels % g.groups !== 0) {
    failNode('INVALID_ATTRS', ctx, `groups ${g.groups} does not divide the ${channels} ${what} (${shapes})`, attrAt('groups'));
  }
}

function biasOrFail(b: ValueMeta | undefined, channels: number | null, ctx: InferContext): void {
  if (b === undefined) return;
  if (b.shape.length !== 1 || (channels !== null && b.shape[0] !== null && b.shape[0] !== channels)) {
    failNode('SHAPE_MISMATCH', ctx, `b ${fmt(b.shape)} must have shape [${channels ?? 'O'}], one value per output channel`, inputAt(2));
  }
}

/**
 * The forward conv's shape rule: x (N, C, *S) and w (O, C/groups, *K) give the output's spatial dims
 * floor((S + before + after - extent) / stride) + 1 (null where unknown); a kernel larger than the padded input is
 * SHAPE_MISMATCH.
 */
function forwardShapes(x: ValueMeta, w: ValueMeta, attrs: ConvAttrs, ctx: InferContext, at: Slots): { geo: Geometry; spatial: SymShape } {
  const nd = ranksOrFail(x, w, ctx, at, '(O, C/groups, *kernel)');
  const shapes = `x ${fmt(x.shape)}, w ${fmt(w.shape)}`;
  const geo = geometryOrFail(attrs, nd, ctx, shapes);
  const [C, O, Cw] = [x.shape[1]!, w.shape[0]!, w.shape[1]!];
  groupsDivideOrFail(C, 'channels of x', geo, ctx, shapes);
  groupsDivideOrFail(O, 'output channels of w', geo, ctx, shapes);
  if (C !== null && Cw !== null && Cw * geo.groups !== C) {
    failNode('SHAPE_MISMATCH', ctx, `w ${fmt(w.shape)} has ${Cw} input channels per group, but x ${fmt(x.shape)} with groups ${geo.groups} has C/groups = ${C / geo.groups}`, inputAt(at.w));
  }
  const spatial = x.shape.slice(2).map((X, i) => {
    const K = w.shape[2 + i]!;
    if (X === null || K === null) return null;
    const positions = windowPositions(X, K, geo.strides[i]!, geo.pads[i]!, geo.dilations[i]!);
    if (positions === undefined) {
      const [before, after] = geo.pads[i]!;
      failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} padded by [${before}, ${after}] spans ${X + before + after} along spatial axis ${i}, less than the kernel of w ${fmt(w.shape)} dilated by ${geo.dilations[i]} (extent ${kernelExtent(K, geo.dilations[i]!)}); the output would be empty`, inputAt(at.x));
    }
    return positions;
  });
  return { geo, spatial };
}

/** The internal ops' rule: g is a cotangent of conv(x, w), so it must have that shape (where known). */
function cotangentOrFail(g: ValueMeta, x: ValueMeta, w: ValueMeta, attrs: ConvAttrs, ctx: InferContext, at: Slots & { g: number }): void {
  const { spatial } = forwardShapes(x, w, attrs, ctx, at);
  const want: SymShape = [x.shape[0]!, w.shape[0]!, ...spatial];
  if (!shapesAgree(g.shape, want)) failNode('SHAPE_MISMATCH', ctx, `g ${fmt(g.shape)} must have the shape of conv(x, w), ${fmt(want)}`, inputAt(at.g));
}

/** conv_transpose's shape rule: (S - 1) * stride - before - after + extent + output_padding, which must be >= 1. */
function transposeShapes(x: ValueMeta, w: ValueMeta, attrs: ConvTransposeAttrs, ctx: InferContext): { geo: Geometry; outputPadding: number[]; O: number | null; spatial: SymShape } {
  const nd = ranksOrFail(x, w, ctx, { x: 0, w: 1 }, '(C, O/groups, *kernel)');
  const shapes = `x ${fmt(x.shape)}, w ${fmt(w.shape)}`;
  const geo = geometryOrFail(attrs, nd, ctx, shapes);
  const outputPadding = perAxisOrFail(attrs.output_padding, nd, 'output_padding', 0, ctx, shapes);
  const over = outputPadding.findIndex((p, i) => p >= Math.max(geo.strides[i]!, geo.dilations[i]!));
  if (over >= 0) {
    failNode('INVALID_ATTRS', ctx, `output_padding [${outputPadding.join(', ')}] must be less than max(stride, dilation) on every spatial axis; axis ${over} has ${outputPadding[over]} with stride ${geo.strides[over]} and dilation ${geo.dilations[over]} (${shapes})`, attrAt('output_padding'));
  }
  const [C, Cw, Og] = [x.shape[1]!, w.shape[0]!, w.shape[1]!];
  if (C !== null && Cw !== null && C !== Cw) {
    failNode('SHAPE_MISMATCH', ctx, `w ${fmt(w.shape)} must have the ${C} channels of x ${fmt(x.shape)} first: w is (C, O/groups, *kernel)`, inputAt(1));
  }
  groupsDivideOrFail(C ?? Cw, 'channels of x', geo, ctx, shapes);
  const spatial = x.shape.slice(2).map((X, i) => {
    const K = w.shape[2 + i]!;
    if (X === null || K === null) return null;
    const [before, after] = geo.pads[i]!;
    const size = (X - 1) * geo.strides[i]! - before - after + kernelExtent(K, geo.dilations[i]!) + outputPadding[i]!;
    if (size < 1) {
      failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x.shape)} with w ${fmt(w.shape)}, stride ${geo.strides[i]}, pads [${before}, ${after}] and output_padding ${outputPadding[i]} gives ${size} output positions along spatial axis ${i}; pads crop more than the output has`, inputAt(0));
    }
    return size;
  });
  return { geo, outputPadding, O: Og === null ? null : Og * geo.groups, spatial };
}

/** The output padding with which conv_transpose maps conv(x, w)'s spatial size back to x's: (S + P - extent) mod s. */
function recoveringPadding(xSpatial: readonly number[], kernel: readonly number[], g: Geometry): number[] {
  return xSpatial.map((X, i) => (X + g.pads[i]![0] + g.pads[i]![1] - kernelExtent(kernel[i]!, g.dilations[i]!)) % g.strides[i]!);
}

/** d<g, conv(x, w)>/dx as conv_transpose (sizes known) or conv_input_grad (x's or the kernel's spatial size unknown). */
function inputGrad(e: Emitter, g: Ref, w: Ref, x: Ref, geo: Geometry): Ref {
  const S = x.shape.slice(2), K = w.shape.slice(2);
  if (known(S) && known(K)) {
    return e.op('conv_transpose', [g, w], { ...geometryAttrs(geo), output_padding: recoveringPadding(S, K, geo) });
  }
  return e.op('conv_input_grad', [g, w, x], geometryAttrs(geo));
}

/** The cotangent of a bias: g summed over every axis but the channels. */
function biasGrad(e: Emitter, g: Ref): Ref {
  return e.op('sum', [g], { axes: [0, ...g.shape.slice(2).map((_, i) => i + 2)], keepdims: false });
}

/** A bias tangent b (O) broadcast to the output's shape. */
function biasTangent(e: Emitter, b: Ref, output: Ref): Ref {
  const v = e.op('unsqueeze', [b], { axes: output.shape.slice(2).map((_, i) => i + 1) });
  return broadcastToLike(e, v, output);
}

function addAll(e: Emitter, terms: Ref[]): Ref | null {
  if (terms.length === 0) return null;
  return terms.reduce((acc, t) => e.op('add', [acc, t]));
}

/**
 * The JVP of a conv-like op y = f(x, w) + b that is bilinear in (x, w): f(tx, w) + f(x, tw) + tb, with the bias
 * tangent folded into one of the products as its bias input.
 */
function bilinearJvp(e: Emitter, op: string, x: Ref, w: Ref, tangents: (Ref | null)[], output: Ref, attrs: Record<string, unknown>): Ref | null {
  const [tx, tw] = tangents;
  let tb = tangents[2] ?? null;
  const terms: Ref[] = [];
  for (const [a, b] of [[tx, w], [x, tw]] as [Ref | null, Ref | null][]) {
    if (a === null || b === null) continue;
    terms.push(e.op(op, tb ? [a, b, tb] : [a, b], attrs));
    tb = null;
  }
  if (tb) terms.push(biasTangent(e, tb, output));
  return addAll(e, terms);
}

const conv: OpDef<ConvAttrs> = {
  name: 'conv',
  inputs: ['x', 'w', 'b?'],
  attrs: convAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'N-d convolution (cross-correlation, as ONNX Conv and torch convNd): x (N, C, *S), w (O, C/groups, *K), optional bias b (O); output (N, O, *out) with out = floor((S + before + after - dilation * (K - 1) - 1) / stride) + 1.',
  conventions: [...CONVENTIONS, 'a kernel larger than the padded input (an empty output) is SHAPE_MISMATCH'],
  infer(inputs, attrs, ctx) {
    const [x, w, b] = inputs;
    const dtype = sameDtype(inputs, ['x', 'w', 'b'], FP, ctx);
    const { spatial } = forwardShapes(x!, w!, attrs, ctx, { x: 0, w: 1 });
    biasOrFail(b, w!.shape[0]!, ctx);
    return { shape: [x!.shape[0]!, w!.shape[0]!, ...spatial], dtype };
  },
  async run([x, w, b], attrs, k) {
    const g = geometry(attrs, spatialRank(w!));
    const r = await k.conv(x!.data as FloatArray, [...x!.shape], w!.data as FloatArray, [...w!.shape], b ? (b.data as FloatArray) : null, g.strides, g.pads, g.dilations, g.groups);
    return { dtype: x!.dtype, shape: r.shape, data: r.data };
  },
  flops: ([, w], out) => 2 * prod(out.shape) * prod(w!.shape.slice(1)),
  vjp({ e, inputs: [x, w, b], g, attrs }) {
    const geo = geometry(attrs, spatialRank(w!));
    const gx = inputGrad(e, g, w!, x!, geo);
    const gw = e.op('conv_weight_grad', [x!, g, w!], geometryAttrs(geo));
    return b ? [gx, gw, biasGrad(e, g)] : [gx, gw];
  },
  jvp: ({ e, inputs: [x, w], tangents, output, attrs }) => bilinearJvp(e, 'conv', x!, w!, tangents, output, geometryAttrs(geometry(attrs, spatialRank(w!)))),
  vmap: convVmap('conv', { inputs: ['data', 'weight', 'bias'], output: 'data' }),
  samples: [
    {
      inputs: [{ shape: [2, 3, 7] }, { shape: [4, 3, 3] }, { shape: [4] }],
      attrs: { strides: [2], pads: [[1, 2]], dilations: [1], groups: 1 },
      note: '1-D, stride 2, asymmetric pads, bias (the x gradient needs output_padding 1)',
    },
    {
      inputs: [{ shape: [2, 4, 6, 5] }, { shape: [6, 2, 3, 2] }, { shape: [6] }],
      attrs: { strides: [2, 1], pads: [[1, 0], [2, 1]], dilations: [1, 2], groups: 2 },
      note: '2-D, groups 2, stride 2, dilation 2, asymmetric pads',
    },
    {
      inputs: [{ shape: [1, 3, 6, 6] }, { shape: [6, 1, 3, 3] }],
      attrs: { strides: [1, 1], pads: [[2, 2], [2, 2]], dilations: [2, 2], groups: 3 },
      note: 'depthwise (channel multiplier 2), dilation 2, no bias',
    },
    {
      inputs: [{ shape: [1, 2, 4, 5, 4] }, { shape: [3, 2, 2, 3, 2] }, { shape: [3] }],
      attrs: { strides: [1, 2, 1], pads: [[0, 1], [1, 1], [0, 0]], dilations: [1, 1, 2], groups: 1 },
      note: '3-D, stride 2 on one axis, dilation 2 on another',
    },
    {
      inputs: [{ shape: [1, 2, 5, 5] }, { shape: [2, 2, 3, 3] }],
      attrs: { strides: 2, pads: 1, dilations: 1, groups: 1 },
      note: 'scalar shorthand for strides, pads and dilations',
    },
    {
      inputs: [{ shape: [2, 4, 3, 3] }, { shape: [2, 4, 1, 1] }, { shape: [2] }],
      note: 'pointwise 1x1, defaults',
    },
  ],
};

const convTranspose: OpDef<ConvTransposeAttrs> = {
  name: 'conv_transpose',
  inputs: ['x', 'w', 'b?'],
  attrs: convTransposeAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Transposed convolution (ONNX ConvTranspose, torch conv_transposeNd; the adjoint of conv in x): x (N, C, *S), w (C, O/groups, *K), optional bias b (O); output (N, O, *out) with out = (S - 1) * stride - before - after + dilation * (K - 1) + 1 + output_padding.',
  conventions: [
    ...CONVENTIONS,
    'output_padding (< max(stride, dilation) per axis) is added at the high end of the full output before pads crop it; the bias is added at every output position',
    'an output with no positions (pads cropping everything) is SHAPE_MISMATCH',
  ],
  infer(inputs, attrs, ctx) {
    const [x, , b] = inputs;
    const dtype = sameDtype(inputs, ['x', 'w', 'b'], FP, ctx);
    const { O, spatial } = transposeShapes(x!, inputs[1]!, attrs, ctx);
    biasOrFail(b, O, ctx);
    return { shape: [x!.shape[0]!, O, ...spatial], dtype };
  },
  async run([x, w, b], attrs, k) {
    const nd = spatialRank(w!);
    const g = geometry(attrs, nd);
    const r = await k.convTranspose(x!.data as FloatArray, [...x!.shape], w!.data as FloatArray, [...w!.shape], b ? (b.data as FloatArray) : null, g.strides, g.pads, g.dilations, g.groups, perAxis(attrs.output_padding, nd));
    return { dtype: x!.dtype, shape: r.shape, data: r.data };
  },
  flops: ([x, w]) => 2 * prod(x!.shape) * prod(w!.shape.slice(1)),
  vjp({ e, inputs: [x, w, b], g, attrs }) {
    const nd = spatialRank(w!);
    const geo = geometry(attrs, nd);
    // conv(g, w) has floor(output_padding / stride) more positions than x along an axis whose output padding
    // reaches a whole stride (possible when dilation > stride): those see only the padding and are cut off.
    const extra = perAxis(attrs.output_padding, nd).map((p, i) => Math.floor(p / geo.strides[i]!));
    const cut = extra.flatMap((q, i) => (q > 0 ? [i] : []));
    let gx = e.op('conv', [g, w!], geometryAttrs(geo));
    let xFull = x!;
    if (cut.length > 0) {
      gx = e.op('slice', [gx], { starts: cut.map(() => 0), ends: cut.map((i) => -extra[i]!), axes: cut.map((i) => i + 2), steps: null });
      xFull = e.op('pad', [x!], { pads: [[0, 0], [0, 0], ...extra.map((q) => [0, q])], value: 0 });
    }
    const gw = e.op('conv_weight_grad', [g, xFull, w!], geometryAttrs(geo));
    return b ? [gx, gw, biasGrad(e, g)] : [gx, gw];
  },
  jvp({ e, inputs: [x, w], tangents, output, attrs }) {
    const nd = spatialRank(w!);
    return bilinearJvp(e, 'conv_transpose', x!, w!, tangents, output, { ...geometryAttrs(geometry(attrs, nd)), output_padding: perAxis(attrs.output_padding, nd) });
  },
  vmap: convVmap('conv_transpose', { inputs: ['data', 'weight', 'bias'], output: 'data' }),
  samples: [
    {
      inputs: [{ shape: [2, 4, 4] }, { shape: [4, 3, 3] }, { shape: [3] }],
      attrs: { strides: [2], pads: [[1, 0]], dilations: [1], groups: 1, output_padding: [1] },
      note: '1-D, stride 2, output_padding 1, bias',
    },
    {
      inputs: [{ shape: [1, 4, 3, 4] }, { shape: [4, 2, 3, 2] }, { shape: [4] }],
      attrs: { strides: [2, 1], pads: [[1, 1], [0, 1]], dilations: [1, 2], groups: 2, output_padding: [1, 1] },
      note: '2-D, groups 2; output_padding 1 >= stride 1 under dilation 2 on the second axis',
    },
    {
      inputs: [{ shape: [1, 3, 3, 3] }, { shape: [3, 2, 3, 3] }],
      attrs: { strides: 2, pads: 1, dilations: 1, groups: 3, output_padding: 1 },
      note: 'depthwise (channel multiplier 2), scalar shorthand, no bias',
    },
    {
      inputs: [{ shape: [1, 2, 2, 3, 2] }, { shape: [2, 2, 2, 2, 2] }, { shape: [2] }],
      attrs: { strides: [2, 1, 2], pads: [[0, 1], [1, 0], [0, 0]], dilations: [1, 2, 1], groups: 1, output_padding: [1, 0, 0] },
      note: '3-D',
    },
  ],
};

const convWeightGrad: OpDef<ConvAttrs> = {
  name: 'conv_weight_grad',
  inputs: ['x', 'g', 'w'],
  internal: true,
  attrs: convAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  doc: "Gradient of <g, conv(x, w)> with respect to w (conv's VJP for its weight), summed over the batch; w supplies only its shape.",
  infer(inputs, attrs, ctx) {
    const [x, g, w] = inputs;
    const dtype = sameDtype(inputs, ['x', 'g', 'w'], FP, ctx);
    cotangentOrFail(g!, x!, w!, attrs, ctx, { x: 0, w: 2, g: 1 });
    return { shape: [...w!.shape], dtype };
  },
  async run([x, g, w], attrs, k) {
    const geo = geometry(attrs, spatialRank(w!));
    const data = await k.convWeightGrad(x!.data as FloatArray, [...x!.shape], g!.data as FloatArray, [...g!.shape], [...w!.shape], geo.strides, geo.pads, geo.dilations, geo.groups);
    return { dtype: x!.dtype, shape: [...w!.shape], data };
  },
  flops: ([, g, w]) => 2 * prod(g!.shape) * prod(w!.shape.slice(1)),
  vjp({ e, inputs: [x, g, w], g: gw, attrs }) {
    const geo = geometry(attrs, spatialRank(w!));
    return [inputGrad(e, g!, gw, x!, geo), e.op('conv', [x!, gw], geometryAttrs(geo)), null];
  },
  jvp({ e, inputs: [x, g, w], tangents: [tx, tg], attrs }) {
    const a = geometryAttrs(geometry(attrs, spatialRank(w!)));
    const terms: Ref[] = [];
    if (tx) terms.push(e.op('conv_weight_grad', [tx, g!, w!], a));
    if (tg) terms.push(e.op('conv_weight_grad', [x!, tg, w!], a));
    return addAll(e, terms);
  },
  vmap: convVmap('conv_weight_grad', { inputs: ['data', 'data', 'weight'], output: 'weight' }),
  samples: [
    {
      inputs: [{ shape: [2, 4, 5, 6] }, { shape: [2, 6, 2, 5] }, { shape: [6, 2, 3, 2] }],
      attrs: { strides: [2, 1], pads: [[1, 0], [0, 1]], dilations: [1, 2], groups: 2 },
      note: '2-D, groups 2',
    },
    {
      inputs: [{ shape: [1, 2, 6] }, { shape: [1, 3, 3] }, { shape: [3, 2, 2] }],
      attrs: { strides: [2], pads: [[0, 1]], dilations: [2], groups: 1 },
      note: '1-D, stride 2, dilation 2',
    },
  ],
};

const convInputGrad: OpDef<ConvAttrs> = {
  name: 'conv_input_grad',
  inputs: ['g', 'w', 'x'],
  internal: true,
  attrs: convAttrs,
  outputDatatype: 'same as g',
  differentiable: true,
  doc: "Gradient of <g, conv(x, w)> with respect to x (conv's VJP for its input): conv_transpose of g with the output padding that gives back x's spatial size; x supplies only its shape.",
  infer(inputs, attrs, ctx) {
    const [g, w, x] = inputs;
    const dtype = sameDtype(inputs, ['g', 'w', 'x'], FP, ctx);
    cotangentOrFail(g!, x!, w!, attrs, ctx, { x: 2, w: 1, g: 0 });
    return { shape: [...x!.shape], dtype };
  },
  async run([g, w, x], attrs, k) {
    const geo = geometry(attrs, spatialRank(w!));
    const outputPadding = recoveringPadding(x!.shape.slice(2), w!.shape.slice(2), geo);
    const r = await k.convTranspose(g!.data as FloatArray, [...g!.shape], w!.data as FloatArray, [...w!.shape], null, geo.strides, geo.pads, geo.dilations, geo.groups, outputPadding);
    return { dtype: g!.dtype, shape: r.shape, data: r.data };
  },
  flops: ([g, w]) => 2 * prod(g!.shape) * prod(w!.shape.slice(1)),
  vjp({ e, inputs: [g, w, x], g: gx, attrs }) {
    const a = geometryAttrs(geometry(attrs, spatialRank(w!)));
    return [e.op('conv', [gx, w!], a), e.op('conv_weight_grad', [gx, g!, w!], a), null];
  },
  jvp({ e, inputs: [g, w, x], tangents: [tg, tw], attrs }) {
    const a = geometryAttrs(geometry(attrs, spatialRank(w!)));
    const terms: Ref[] = [];
    if (tg) terms.push(e.op('conv_input_grad', [tg, w!, x!], a));
    if (tw) terms.push(e.op('conv_input_grad', [g!, tw, x!], a));
    return addAll(e, terms);
  },
  vmap: convVmap('conv_input_grad', { inputs: ['data', 'weight', 'data'], output: 'data' }),
  samples: [
    {
      inputs: [{ shape: [2, 6, 2, 5] }, { shape: [6, 2, 3, 2] }, { shape: [2, 4, 5, 6] }],
      attrs: { strides: [2, 1], pads: [[1, 0], [0, 1]], dilations: [1, 2], groups: 2 },
      note: '2-D, groups 2, the output padding read from x (1 on the strided axis)',
    },
  ],
};

export const ops: OpDef[] = [conv, convTranspose, convWeightGrad, convInputGrad];
