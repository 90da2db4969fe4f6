/**
 * Neural-net ops: softmax, log_softmax, softmax_cross_entropy (class-index or probability labels), mse and
 * binary_cross_entropy_with_logits, plus the internal `one_hot_like` (class labels as a one-hot tensor shaped like
 * the logits, so the cross-entropy gradient needs no known class count). Everything is max-shifted or written in the
 * log1p(exp(-|x|)) form so logits of 1e4 stay finite in values and gradients.
 */
import { z } from 'zod';
import type { FloatArray, IndexArray } from '../kernels.types.js';
import { broadcastShapes, type SymShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { OpDef, OpKernels, RankFreeUse, Ref, VmapArgs } from './types.js';
import {
  axisOrFail, failNode, fmt, FP, INDEX, inputAt, intSchema, keepDims, lossCotangent, needDtype, normAxis, reduceLoss,
  type Reduction, reductionSchema, sameDtype, unbroadcast,
} from './common.js';

const elements = (s: readonly (number | null)[]) => s.reduce<number>((p, d) => p * (d ?? 0), 1);

interface AxisAttrs { axis: number }

function softmaxOp(log: boolean): OpDef<AxisAttrs> {
  return {
    name: log ? 'log_softmax' : 'softmax',
    inputs: ['x'],
    attrs: z.strictObject({ axis: intSchema.default(-1) }),
    outputDatatype: 'same as x',
    differentiable: true,
    doc: log ? 'log(softmax(x)) along axis, computed as x - logsumexp(x).' : 'exp(x) / sum(exp(x)) along axis.',
    conventions: ['max-shifted: finite for logits of 1e4'],
    infer([x], attrs, ctx) {
      needDtype(x!.dtype, 'x', FP, ctx);
      if (x!.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `x ${fmt(x!.shape)} has no axis to normalize over`);
      axisOrFail(attrs.axis, x!.shape.length, ctx);
      return { shape: [...x!.shape], dtype: x!.dtype };
    },
    async run([x], attrs, k) {
      const data = await k.softmax(x!.data as FloatArray, [...x!.shape], normAxis(attrs.axis, x!.shape.length), log);
      return { dtype: x!.dtype, shape: [...x!.shape], data };
    },
    flops: ([x]) => 4 * elements(x!.shape),
    vjp({ e, inputs: [x], output: y, g, attrs }) {
      const axes = [normAxis(attrs.axis, x!.shape.length)];
      if (log) {
        const s = e.op('sum', [g], { axes, keepdims: true });
        return [e.op('sub', [g, e.op('mul', [e.op('exp', [y]), s])])];
      }
      const s = e.op('sum', [e.op('mul', [g, y])], { axes, keepdims: true });
      return [e.op('mul', [y, e.op('sub', [g, s])])];
    },
    vmap({ b, inputs: [x], attrs }) {
      b.out(log ? 'log_softmax' : 'softmax', [x!.name], { ...attrs, axis: b.axis(attrs.axis, x!.shape.length, -1) + 1 });
      return true;
    },
    jvp({ e, inputs: [x], output: y, tangents: [t], attrs }) {
      const axes = [normAxis(attrs.axis, x!.shape.length)];
      if (log) {
        const s = e.op('sum', [e.op('mul', [e.op('exp', [y]), t!])], { axes, keepdims: true });
        return e.op('sub', [t!, s]);
      }
      const s = e.op('sum', [e.op('mul', [t!, y])], { axes, keepdims: true });
      return e.op('mul', [y, e.op('sub', [t!, s])]);
    },
    samples: [
      { inputs: [{ shape: [2, 4] }], attrs: { axis: -1 } },
      { inputs: [{ shape: [3, 2, 2] }], attrs: { axis: 0 }, note: 'leading axis' },
    ],
  };
}

interface LossAttrs { reduction: Reduction }
interface CeAttrs extends LossAttrs { axis: number }

async function applyReduction(t: Tensor, reduction: Reduction, k: OpKernels): Promise<Tensor> {
  if (reduction === 'none') return t;
  const axes = t.shape.map((_, i) => i);
  return { dtype: t.dtype, shape: [], data: await k.reduce(reduction, t.data, [...t.shape], axes) };
}

function lossShape(perExample: SymShape, reduction: Reduction): SymShape {
  return reduction === 'none' ? perExample : [];
}

/**
 * Batching rule of the losses: per-example losses batch like any op once every operand carries the batch axis; the
 * reduction must then skip that axis, so it runs as its own node. Operands of a 'broadcasting' loss (mse) are lifted
 * to a common rank, the others tiled as they are; a 'class-axis' loss (cross-entropy) moves its axis past the batch
 * axis, and its per-example loss has one dim fewer than the logits.
 */
function batchLoss(op: string, kind: 'broadcasting' | 'same-shape' | 'class-axis') {
  return ({ b, inputs, attrs }: VmapArgs): boolean => {
    const rank = Math.max(...inputs.map((v) => v.shape.length));
    const operands = inputs.map((v) => {
      if (kind !== 'broadcasting') return b.tile(v);
      if (v.batched) return b.lift(v, rank);
      return b.tmp('broadcast_to', [v.name], { shape: [b.K, ...Array<number>(rank - v.shape.length).fill(1), ...v.shape] });
    });
    const reduction = (attrs.reduction as string | undefined) ?? 'mean';
    const perAttrs: Record<string, unknown> = { ...attrs, reduction: 'none' };
    if (kind === 'class-axis') perAttrs.axis = b.axis(attrs.axis, inputs[0]!.shape.length, -1) + 1;
    if (reduction === 'none') {
      b.out(op, operands, perAttrs);
    } else {
      const per = b.tmp(op, operands, perAttrs);
      const perRank = kind === 'class-axis' ? inputs[0]!.shape.length - 1 : rank;
      b.out(reduction === 'sum' ? 'sum' : 'mean', [per], { axes: Array.from({ length: perRank }, (_, i) => i + 1), keepdims: false });
    }
    return true;
  };
}

/** An elementwise loss needs no rank: it reduces everything, or (reduction 'none') keeps its operands' rank. */
const elementwiseLossRank = (a: LossAttrs): RankFreeUse => ({ keepsRank: a.reduction === 'none', reducesAll: true });


/** -log_softmax(x)[label] per example (labels outside the class axis are INDEX_OUT_OF_RANGE, negatives too). */
async function pickClass(lsm: FloatArray, shape: readonly number[], axis: number, labels: IndexArray, k: OpKernels): Promise<FloatArray> {
  const indShape = shape.map((d, i) => (i === axis ? 1 : d));
  const picked = await k.gatherElements(lsm, [...shape], labels, indShape, axis, false, 'class label');
  return (await k.unary('neg', picked)) as FloatArray;
}

const softmaxCrossEntropy: OpDef<CeAttrs> = {
  name: 'softmax_cross_entropy',
  inputs: ['logits', 'labels'],
  attrs: z.strictObject({ axis: intSchema.default(-1).describe('class axis'), reduction: reductionSchema }),
  outputDatatype: 'same as logits',
  differentiable: true,
  doc: 'Cross-entropy of softmax(logits) against class indices (INT32/INT64, logits shape without the class axis) or probabilities (same shape as logits).',
  conventions: [
    'max-shifted: finite for logits of 1e4',
    'class labels outside the class axis are INDEX_OUT_OF_RANGE',
    'probability labels are differentiable',
    'mean is over every element of the per-example loss',
  ],
  infer([x, lab], attrs, ctx) {
    needDtype(x!.dtype, 'logits', FP, ctx);
    if (x!.shape.length === 0) failNode('SHAPE_MISMATCH', ctx, `logits ${fmt(x!.shape)} has no class axis`);
    const axis = axisOrFail(attrs.axis, x!.shape.length, ctx);
    const perEx = x!.shape.filter((_, i) => i !== axis);
    if (INDEX.includes(lab!.dtype)) {
      const ok = lab!.shape.length === perEx.length && lab!.shape.every((d, i) => d === null || perEx[i] === null || d === perEx[i]);
      if (!ok) failNode('SHAPE_MISMATCH', ctx, `class labels ${fmt(lab!.shape)} must have the logits shape ${fmt(x!.shape)} without axis ${axis}: ${fmt(perEx)}`, inputAt(1));
    } else {
      sameDtype([x!, lab!], ['logits', 'labels'], FP, ctx);
      const ok = lab!.shape.length === x!.shape.length && lab!.shape.every((d, i) => d === null || x!.shape[i] === null || d === x!.shape[i]);
      if (!ok) failNode('SHAPE_MISMATCH', ctx, `probability labels ${fmt(lab!.shape)} must have the logits shape ${fmt(x!.shape)}`, inputAt(1));
    }
    return { shape: lossShape(perEx, attrs.reduction), dtype: x!.dtype };
  },
  async run([x, lab], attrs, k) {
    const shape = [...x!.shape];
    const axis = normAxis(attrs.axis, shape.length);
    const lsm = await k.softmax(x!.data as FloatArray, shape, axis, true);
    const perShape = shape.filter((_, i) => i !== axis);
    let per: FloatArray;
    if (lab!.dtype === 'INT32' || lab!.dtype === 'INT64') {
      per = await pickClass(lsm, shape, axis, lab!.data as IndexArray, k);
    } else {
      // mul_no_nan: a zero probability times log_softmax = -Infinity contributes 0, not NaN
      const prod = await k.binary('mul_no_nan', lab!.data, shape, lsm, shape);
      per = (await k.unary('neg', await k.reduce('sum', prod.data, shape, [axis]))) as FloatArray;
    }
    return applyReduction({ dtype: x!.dtype, shape: perShape, data: per }, attrs.reduction, k);
  },
  flops: ([x]) => 6 * elements(x!.shape),
  vjp({ e, inputs: [x, lab], g, attrs }) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const perAxes = x!.shape.map((_, i) => i).filter((i) => i !== axis);
    const gl = keepDims(e, lossCotangent(e, g, attrs.reduction, x!, perAxes), [axis], attrs.reduction !== 'none');
    const sm = e.op('softmax', [x!], { axis });
    if (INDEX.includes(lab!.dtype)) {
      const oh = e.op('one_hot_like', [lab!, x!], { axis });
      return [e.op('mul', [e.op('sub', [sm, oh]), gl]), null];
    }
    const mass = e.op('sum', [lab!], { axes: [axis], keepdims: true });
    const dx = e.op('mul', [e.op('sub', [e.op('mul', [sm, mass]), lab!]), gl]);
    const nlsm = e.op('neg', [e.op('log_softmax', [x!], { axis })]);
    return [dx, unbroadcast(e, e.op('mul_no_nan', [gl, nlsm]), lab!)];
  },
  jvp({ e, inputs: [x, lab], tangents: [tx, tl], attrs }) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const terms: Ref[] = [];
    if (tx) {
      const sm = e.op('softmax', [x!], { axis });
      const w = INDEX.includes(lab!.dtype)
        ? e.op('sub', [sm, e.op('one_hot_like', [lab!, x!], { axis })])
        : e.op('sub', [e.op('mul', [sm, e.op('sum', [lab!], { axes: [axis], keepdims: true })]), lab!]);
      terms.push(e.op('mul', [tx, w]));
    }
    if (tl && !INDEX.includes(lab!.dtype)) {
      terms.push(e.op('mul_no_nan', [tl, e.op('neg', [e.op('log_softmax', [x!], { axis })])]));
    }
    if (terms.length === 0) return null;
    const dense = terms.length === 2 ? e.op('add', terms) : terms[0]!;
    return reduceLoss(e, e.op('sum', [dense], { axes: [axis], keepdims: false }), attrs.reduction);
  },
  vmap: batchLoss('softmax_cross_entropy', 'class-axis'),
  samples: [
    {
      inputs: [{ shape: [3, 4] }, { shape: [3], dtype: 'INT64', values: [0, 3, 1] }],
      attrs: { axis: -1, reduction: 'mean' }, note: 'class indices, mean',
    },
    {
      inputs: [{ shape: [4, 2, 3] }, { shape: [2, 3], dtype: 'INT32', values: [0, 3, 1, 2, 2, 0] }],
      attrs: { axis: 0, reduction: 'none' }, note: 'class axis 0, none',
    },
    {
      inputs: [{ shape: [2, 3] }, { shape: [2, 3], range: [0.05, 0.6] }],
      attrs: { axis: -1, reduction: 'sum' }, note: 'probability labels, sum',
    },
  ],
};

/** Class labels as one-hot rows shaped like the logits (the class count read from the logits at run time). */
const oneHotLike: OpDef<AxisAttrs> = {
  name: 'one_hot_like',
  inputs: ['labels', 'logits'],
  internal: true,
  attrs: z.strictObject({ axis: intSchema.default(-1) }),
  outputDatatype: 'same as logits',
  differentiable: false,
  doc: 'one_hot(labels) along axis with depth and datatype taken from logits.',
  infer([lab, x], attrs, ctx) {
    needDtype(lab!.dtype, 'labels', INDEX, ctx);
    axisOrFail(attrs.axis, x!.shape.length, ctx);
    // user graphs may call it too (it is in the catalogue), so the kernel must never see labels of the wrong shape
    const axis = normAxis(attrs.axis, x!.shape.length);
    const want = x!.shape.filter((_, i) => i !== axis);
    const fits = lab!.shape.length === want.length && lab!.shape.every((d, i) => d === null || want[i] === null || d === want[i]);
    if (!fits) failNode('SHAPE_MISMATCH', ctx, `labels ${fmt(lab!.shape)} must be logits ${fmt(x!.shape)} without axis ${axis}, i.e. ${fmt(want)}`, inputAt(0));
    return { shape: [...x!.shape], dtype: x!.dtype };
  },
  async run([lab, x], attrs, k) {
    const axis = normAxis(attrs.axis, x!.shape.length);
    const data = await k.oneHot(lab!.data as IndexArray, [...lab!.shape], x!.shape[axis]!, axis, x!.dtype);
    return { dtype: x!.dtype, shape: [...x!.shape], data };
  },
  flops: ([, x]) => elements(x!.shape),
  // the logits only carry the class count and datatype, which every batch member shares
  vmap({ b, inputs: [labels, logits], attrs }) {
    const axis = b.axis(attrs.axis, logits!.shape.length, -1);
    if (labels!.batched) {
      const carrier = logits!.batched ? logits!.name : b.zeros(logits!.dtype, [b.K, ...logits!.shape]);
      b.out('one_hot_like', [labels!.name, carrier], { ...attrs, axis: axis + 1 });
    } else {
      b.out('one_hot_like', [labels!.name, b.zeros(logits!.dtype, logits!.shape)], { ...attrs, axis });
    }
    return labels!.batched;
  },
  samples: [
    { inputs: [{ shape: [3], dtype: 'INT64', values: [0, 3, 1] }, { shape: [3, 4] }], attrs: { axis: -1 }, note: 'INT64 labels, last axis' },
    { inputs: [{ shape: [2], dtype: 'INT32', values: [2, 0] }, { shape: [3, 2] }], attrs: { axis: 0 }, note: 'INT32 labels, axis 0' },
  ],
};

function binaryLossInfer(names: [string, string], needSame: boolean) {
  return ([a, b]: { shape: SymShape; dtype: import('../tensor/dtype.js').DType }[], attrs: LossAttrs, ctx: Parameters<OpDef['infer']>[2]) => {
    const dtype = sameDtype([a!, b!], names, FP, ctx);
    const shape = broadcastShapes(a!.shape, b!.shape);
    const same = a!.shape.length === b!.shape.length && a!.shape.every((d, i) => d === null || b!.shape[i] === null || d === b!.shape[i]);
    if (shape === undefined || (needSame && !same)) {
      failNode('SHAPE_MISMATCH', ctx, `${names[0]} ${fmt(a!.shape)} and ${names[1]} ${fmt(b!.shape)} ${needSame ? 'must have the same shape' : 'do not broadcast'}`, inputAt(1));
    }
    return { shape: lossShape(shape, attrs.reduction), dtype };
  };
}

function allAxes(r: Ref): number[] {
  return r.shape.map((_, i) => i);
}

const mse: OpDef<LossAttrs> = {
  name: 'mse',
  inputs: ['a', 'b'],
  attrs: z.strictObject({ reduction: reductionSchema }),
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'Squared error (a - b)^2, broadcasting like sub, then reduced.',
  conventions: ['mean is over every element of the broadcast shape'],
  infer: binaryLossInfer(['a', 'b'], false),
  async run([a, b], attrs, k) {
    const d = await k.binary('sub', a!.data, [...a!.shape], b!.data, [...b!.shape]);
    const sq = await k.unary('square', d.data);
    return applyReduction({ dtype: a!.dtype, shape: d.shape, data: sq }, attrs.reduction, k);
  },
  flops: ([a, b]) => 3 * Math.max(elements(a!.shape), elements(b!.shape)),
  vjp({ e, inputs: [a, b], g, attrs }) {
    const d = e.op('sub', [a!, b!]);
    const gl = lossCotangent(e, g, attrs.reduction, d, allAxes(d));
    const gd = e.op('mul', [e.op('mul', [d, e.scalar(2, d.dtype)]), gl]);
    return [unbroadcast(e, gd, a!), unbroadcast(e, e.op('neg', [gd]), b!)];
  },
  jvp({ e, inputs: [a, b], tangents: [ta, tb], attrs }) {
    const d = e.op('sub', [a!, b!]);
    const td = ta && tb ? e.op('sub', [ta, tb]) : ta ?? e.op('neg', [tb!]);
    return reduceLoss(e, e.op('mul', [e.op('mul', [d, e.scalar(2, d.dtype)]), td]), attrs.reduction);
  },
  vmap: batchLoss('mse', 'broadcasting'),
  rankFree: elementwiseLossRank,
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [2, 3] }], attrs: { reduction: 'mean' } },
    { inputs: [{ shape: [2, 1] }, { shape: [3] }], attrs: { reduction: 'none' }, note: 'broadcast [2, 1] x [3]' },
    { inputs: [{ shape: [3] }, { shape: [2, 3] }], attrs: { reduction: 'sum' } },
  ],
};

const bceWithLogits: OpDef<LossAttrs> = {
  name: 'binary_cross_entropy_with_logits',
  inputs: ['logits', 'targets'],
  attrs: z.strictObject({ reduction: reductionSchema }),
  outputDatatype: 'same as logits',
  differentiable: true,
  doc: 'max(x, 0) - x·t + log1p(exp(-|x|)) per element (logits and targets of the same shape), then reduced.',
  conventions: ['stable for |logits| up to 1e4 in FP32', 'targets are differentiable (d/dt = -x)'],
  infer: binaryLossInfer(['logits', 'targets'], true),
  async run([x, t], attrs, k) {
    const shape = [...x!.shape];
    const relu = await k.unary('relu', x!.data);
    const xt = await k.binary('mul', x!.data, shape, t!.data, shape);
    const soft = await k.unary('log1p', await k.unary('exp', await k.unary('neg', await k.unary('abs', x!.data))));
    const lin = await k.binary('sub', relu, shape, xt.data, shape);
    const per = await k.binary('add', lin.data, shape, soft, shape);
    return applyReduction({ dtype: x!.dtype, shape, data: per.data }, attrs.reduction, k);
  },
  flops: ([x]) => 8 * elements(x!.shape),
  vjp({ e, inputs: [x, t], g, attrs }) {
    const gl = lossCotangent(e, g, attrs.reduction, x!, allAxes(x!));
    const dx = e.op('mul', [e.op('sub', [e.op('sigmoid', [x!]), t!]), gl]);
    const dt = e.op('neg', [e.op('mul', [x!, gl])]);
    return [dx, dt];
  },
  jvp({ e, inputs: [x, t], tangents: [tx, tt], attrs }) {
    const terms: Ref[] = [];
    if (tx) terms.push(e.op('mul', [e.op('sub', [e.op('sigmoid', [x!]), t!]), tx]));
    if (tt) terms.push(e.op('neg', [e.op('mul', [x!, tt])]));
    const dense = terms.length === 2 ? e.op('add', terms) : terms[0]!;
    return reduceLoss(e, dense, attrs.reduction);
  },
  vmap: batchLoss('binary_cross_entropy_with_logits', 'same-shape'),
  rankFree: elementwiseLossRank,
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [2, 3], range: [0, 1] }], attrs: { reduction: 'mean' } },
    { inputs: [{ shape: [4] }, { shape: [4], range: [0, 1] }], attrs: { reduction: 'none' } },
  ],
};

export const ops: OpDef[] = [softmaxOp(false), softmaxOp(true), softmaxCrossEntropy, mse, bceWithLogits, oneHotLike];

