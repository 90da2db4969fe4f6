/**
 * Linear algebra, reductions, the softmax family, normalization, pooling and losses. Where ONNX's defaults differ from
 * gradserve's (reductions keep dims by default, ArgMax's axis is 0, Softmax before opset 13 flattens to 2-D, pooling
 * strides default to 1) the importer writes the ONNX value explicitly.
 */
import { getOp } from '../ops/registry.js';
import type { Dim } from '../tensor/shape.js';
import { type ImportContext, type OnnxNode, type Val, staticFromValues, unsupported } from './context.js';
import type { Handler } from './handlers.js';

const known = (s: Dim[]): s is number[] => s.every((d) => d !== null);

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) unsupported(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

const matmul: Handler = (cx, node) => [cx.emit('matmul', [cx.input(node, 0), cx.input(node, 1)], {}, node.outputs[0])];

/** Gemm: alpha * op(A) op(B) + beta * C, op transposing when transA / transB is set. */
const gemm: Handler = (cx, node) => {
  const a = cx.input(node, 0);
  const b = cx.input(node, 1);
  const c = cx.get(node.inputs[2]);
  const alpha = node.float('alpha', 1);
  const beta = node.float('beta', 1);
  const ta = node.int('transA', 0) === 1;
  const tb = node.int('transB', 0) === 1;
  const last = c === undefined || beta === 0;
  let y: Val = ta || tb ? cx.emit('matmul_t', [a, b], { trans_a: ta, trans_b: tb }) : cx.emit('matmul', [a, b]);
  if (alpha !== 1) y = cx.emit('mul', [y, cx.scalar(alpha, y.dtype)]);
  if (!last) {
    const bc = beta === 1 ? c! : cx.emit('mul', [c!, cx.scalar(beta, c!.dtype)]);
    return [cx.emit('add', [y, bc], {}, node.outputs[0])];
  }
  return [cx.emit('identity', [y], {}, node.outputs[0])];
};

/** Softmax, LogSoftmax, Hardmax. Before opset 13 they work on the input flattened to 2-D at `axis` (default 1). */
const softmax: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const rank = x.shape.length;
  const apply = (v: Val, axis: number, name?: string): Val => {
    if (node.op === 'Hardmax') {
      const d = v.shape[axis];
      if (d === null || d === undefined) unsupported('its axis has a symbolic size');
      const idx = cx.emit('argmax', [v], { axis, keepdims: false });
      return cx.emit('one_hot', [idx], { depth: d, axis, datatype: v.dtype }, name);
    }
    return cx.emit(node.op === 'Softmax' ? 'softmax' : 'log_softmax', [v], { axis }, name);
  };
  if (node.opset >= 13) return [apply(x, normAxis(node.int('axis', -1), rank), node.outputs[0])];
  const axis = normAxis(node.int('axis', 1), rank);
  if (axis === rank - 1) return [apply(x, axis, node.outputs[0])];
  const inner = x.shape.slice(axis);
  if (!known(inner)) unsupported('the flattened axes have symbolic sizes');
  const n = inner.reduce((p, q) => p * q, 1);
  const flat = cx.emit('reshape', [x], { shape: [-1, n] });
  const y = apply(flat, 1);
  const outer = x.shape.slice(0, axis);
  const back = outer.filter((d) => d === null).length <= 1 ? [...outer.map((d) => d ?? -1), ...inner] : unsupported('more than one symbolic dimension before the axis');
  return [cx.emit('reshape', [y], { shape: back }, node.outputs[0])];
};

const REDUCE: Record<string, string> = {
  ReduceSum: 'sum', ReduceMean: 'mean', ReduceMax: 'max', ReduceMin: 'min', ReduceProd: 'prod', ReduceLogSumExp: 'logsumexp',
  ReduceL1: 'norm1', ReduceL2: 'norm2', ReduceSumSquare: 'sumsquare', ReduceLogSum: 'logsum',
};

const reduce: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const rank = x.shape.length;
  const keepdims = node.int('keepdims', 1) === 1;
  // Axes are an attribute until ReduceSum-13 / the others' opset 18, an optional input after.
  const asInput = node.op === 'ReduceSum' ? node.opset >= 13 : node.opset >= 18;
  let axes: number[] | undefined;
  if (asInput) {
    const v = cx.get(node.inputs[1]);
    if (v !== undefined) axes = cx.knownInts(node, cx.staticInput(node, 1, 'axes'), 'axes');
  } else {
    axes = node.ints('axes');
  }
  if (axes !== undefined && axes.length === 0) axes = undefined;
  if (axes === undefined && node.int('noop_with_empty_axes', 0) === 1) return [cx.emit('identity', [x], {}, node.outputs[0])];
  const ax = axes === undefined ? null : axes.map((a) => normAxis(a, rank));
  const attrs = { axes: ax, keepdims };
  const out = node.outputs[0];
  if (x.kind === 'static' && x.values !== undefined && node.op === 'ReduceProd' && ax === null) {
    const p = x.values.reduce((s, v) => s * v, 1);
    return [staticFromValues(x.dtype, keepdims ? x.shape.map(() => 1) : [], [p])];
  }
  switch (REDUCE[node.op]) {
    case 'norm1': return [cx.emit('norm', [x], { ...attrs, ord: 1 }, out)];
    case 'norm2': return [cx.emit('norm', [x], { ...attrs, ord: 2 }, out)];
    case 'sumsquare': return [cx.emit('sum', [cx.emit('square', [x])], attrs, out)];
    case 'logsum': return [cx.emit('log', [cx.emit('sum', [x], attrs)], {}, out)];
    default: return [cx.emit(REDUCE[node.op]!, [x], attrs, out)];
  }
};

/** ArgMax/ArgMin: axis 0 and keepdims by default; select_last_index finds the last extreme through a flip. */
const argExtreme: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const rank = x.shape.length;
  const axis = normAxis(node.int('axis', 0), rank);
  const keepdims = node.int('keepdims', 1) === 1;
  const op = node.op === 'ArgMax' ? 'argmax' : 'argmin';
  if (node.int('select_last_index', 0) !== 1) return [cx.emit(op, [x], { axis, keepdims }, node.outputs[0])];
  const d = x.shape[axis];
  if (d === null || d === undefined) unsupported('select_last_index on an axis of symbolic size');
  const i = cx.emit(op, [cx.emit('flip', [x], { axes: [axis] })], { axis, keepdims });
  return [cx.emit('sub', [cx.scalar(d - 1, 'INT64'), i], {}, node.outputs[0])];
};

const cumsum: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const axis = normAxis(cx.knownInts(node, cx.staticInput(node, 1, 'axis'), 'axis')[0]!, x.shape.length);
  return [cx.emit('cumsum', [x], { axis, exclusive: node.int('exclusive', 0) === 1, reverse: node.int('reverse', 0) === 1 }, node.outputs[0])];
};

/** Einsum: an implicit output (no "->") is every letter used once, in alphabetical order, as numpy has it. */
const einsum: Handler = (cx, node) => {
  const xs = node.inputs.map((n) => cx.get(n)!);
  let eq = node.string('equation', '').replace(/\s+/g, '');
  if (!eq.includes('->')) {
    const letters = eq.replace(/[^a-zA-Z]/g, '');
    const once = [...new Set(letters)].filter((c) => letters.indexOf(c) === letters.lastIndexOf(c)).sort();
    eq = `${eq}->${eq.includes('...') ? '...' : ''}${once.join('')}`;
  }
  return [cx.emit('einsum', xs, { equation: eq }, node.outputs[0])];
};

const topk: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const k = node.opset < 10 ? node.int('k', 1) : cx.knownInts(node, cx.staticInput(node, 1, 'K'), 'K')[0]!;
  const axis = normAxis(node.int('axis', -1), x.shape.length);
  const largest = node.int('largest', 1) === 1;
  const attrs = { k, axis, largest };
  const values = node.outputs[0] ? cx.emit('top_k', [x], attrs, node.outputs[0]) : undefined;
  const indices = node.outputs[1] ? cx.emit('top_k_indices', [x], attrs, node.outputs[1]) : undefined;
  return [values, indices];
};

/** The normalized axes' statistics, for the optional Mean / InvStdDev outputs of LayerNormalization. */
function layerStats(cx: ImportContext, node: OnnxNode, x: Val, axis: number, eps: number): (Val | undefined)[] {
  const axes = Array.from({ length: x.shape.length - axis }, (_, i) => axis + i);
  const want = (i: number) => node.outputs[i] !== undefined && node.outputs[i] !== '';
  const mean = want(1) ? cx.emit('mean', [x], { axes, keepdims: true }, node.outputs[1]) : undefined;
  const inv = want(2) ? cx.emit('rsqrt', [cx.emit('add', [cx.emit('var', [x], { axes, keepdims: true }), cx.scalar(eps, x.dtype)])], {}, node.outputs[2]) : undefined;
  return [mean, inv];
}

const layerNorm: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  // ONNX requires a scale; the fused decomposition (fuse.ts) has none.
  const scale = cx.get(node.inputs[1]);
  const bias = cx.get(node.inputs[2]);
  const axis = normAxis(node.int('axis', -1), x.shape.length);
  const epsilon = node.float('epsilon', 1e-5);
  const ins = scale === undefined ? [x] : bias === undefined ? [x, scale] : [x, scale, bias];
  const y = cx.emit('layer_norm', ins, { axis, epsilon }, node.outputs[0]);
  return [y, ...layerStats(cx, node, x, axis, epsilon)];
};

const batchNorm: Handler = (cx, node) => {
  const ins = [0, 1, 2, 3, 4].map((i) => cx.input(node, i));
  const training = node.int('training_mode', 0) === 1 || node.outputs.slice(1).some((o) => o !== '');
  if (training) unsupported('training mode (running statistics as outputs)');
  return [cx.emit('batch_norm', ins, { epsilon: node.float('epsilon', 1e-5) }, node.outputs[0])];
};

const instanceNorm: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const c = x.shape[1];
  if (c === null || c === undefined) unsupported('the channel count is symbolic');
  return [cx.emit('group_norm', [x, cx.input(node, 1), cx.input(node, 2)], { groups: c, epsilon: node.float('epsilon', 1e-5) }, node.outputs[0])];
};

const AUTO_PADS = new Set(['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER']);

/** The node's auto_pad; any value the ONNX spec does not define is unsupported (not silently NOTSET). */
function autoPadOf(node: OnnxNode): string {
  const a = node.string('auto_pad', 'NOTSET');
  if (!AUTO_PADS.has(a)) unsupported(`auto_pad ${JSON.stringify(a)} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  return a;
}

/** ONNX pads [x1_begin, x2_begin, ..., x1_end, ...] -> [[begin, end], ...]; auto_pad resolved for known sizes. */
function poolPads(node: OnnxNode, x: Val, kernel: number[], strides: number[], dilations: number[]): [number, number][] {
  const k = kernel.length;
  const autoPad = autoPadOf(node);
  if (autoPad === 'NOTSET') {
    const p = node.ints('pads') ?? new Array<number>(2 * k).fill(0);
    return kernel.map((_, i) => [p[i]!, p[i + k]!]);
  }
  if (autoPad === 'VALID') return kernel.map(() => [0, 0]);
  return kernel.map((kk, i) => {
    const size = x.shape[2 + i];
    if (size === null || size === undefined) unsupported(`auto_pad ${autoPad} over a symbolic spatial size`);
    const out = Math.ceil(size / strides[i]!);
    const total = Math.max(0, (out - 1) * strides[i]! + (kk - 1) * dilations[i]! + 1 - size);
    const small = Math.floor(total / 2);
    return autoPad === 'SAME_LOWER' ? [total - small, small] : [small, total - small];
  });
}

const pool: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const kernel = node.ints('kernel_shape');
  if (kernel === undefined) unsupported('it has no kernel_shape');
  const strides = node.ints('strides') ?? kernel.map(() => 1);
  const dilations = node.ints('dilations') ?? kernel.map(() => 1);
  const pads = poolPads(node, x, kernel, strides, dilations);
  const ceil_mode = node.int('ceil_mode', 0) === 1;
  if (node.op === 'MaxPool') {
    if (node.outputs[1] !== undefined && node.outputs[1] !== '') unsupported('its Indices output');
    if (node.int('storage_order', 0) !== 0) unsupported('storage_order 1');
    return [cx.emit('max_pool', [x], { kernel_shape: kernel, strides, pads, ceil_mode, dilations }, node.outputs[0])];
  }
  if (dilations.some((d) => d !== 1)) unsupported('dilations in AveragePool');
  return [cx.emit('avg_pool', [x], { kernel_shape: kernel, strides, pads, ceil_mode, count_include_pad: node.int('count_include_pad', 0) === 1 }, node.outputs[0])];
};

const globalPool: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const axes = Array.from({ length: x.shape.length - 2 }, (_, i) => i + 2);
  return [cx.emit(node.op === 'GlobalMaxPool' ? 'max' : 'mean', [x], { axes, keepdims: true }, node.outputs[0])];
};

const lpNorm: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const p = node.int('p', 2);
  if (p !== 1 && p !== 2) unsupported(`p = ${p} (1 or 2)`);
  const axis = normAxis(node.int('axis', -1), x.shape.length);
  return [cx.emit('div', [x, cx.emit('norm', [x], { ord: p, axes: [axis], keepdims: true })], {}, node.outputs[0])];
};

const mvn: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const axes = (node.ints('axes') ?? [0, 2, 3]).map((a) => normAxis(a, x.shape.length));
  const centered = cx.emit('sub', [x, cx.emit('mean', [x], { axes, keepdims: true })]);
  const std = cx.emit('sqrt', [cx.emit('var', [x], { axes, keepdims: true })]);
  return [cx.emit('div', [centered, cx.emit('add', [std, cx.scalar(1e-9, x.dtype)])], {}, node.outputs[0])];
};

/** SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss: class axis 1, labels of shape (N, d1, ...). */
const loss: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const labels = cx.input(node, 1);
  const weights = cx.get(node.inputs[2]);
  const reduction = node.string('reduction', 'mean');
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') unsupported(`reduction "${reduction}"`);
  const ignore = node.int('ignore_index');
  const logp = node.op === 'SoftmaxCrossEntropyLoss' ? cx.emit('log_softmax', [x], { axis: 1 }) : x;
  if (weights === undefined && ignore === undefined && node.op === 'SoftmaxCrossEntropyLoss') {
    const y = cx.emit('softmax_cross_entropy', [x, labels], { axis: 1, reduction }, node.outputs[0]);
    const lp = node.outputs[1] ? cx.emit('identity', [logp], {}, node.outputs[1]) : undefined;
    return [y, lp];
  }
  // -weight[t] * logp[n, t, ...], with ignored labels weighing 0; "mean" divides by the sum of the weights.
  const idx = cx.emit('unsqueeze', [labels], { axes: [1] });
  let safeIdx: Val = idx;
  let w: Val | undefined = weights === undefined ? undefined : cx.emit('gather', [weights, labels], { axis: 0 });
  if (ignore !== undefined) {
    const keep = cx.emit('not_equal', [labels, cx.scalar(ignore, labels.dtype)]);
    safeIdx = cx.emit('where', [cx.emit('unsqueeze', [keep], { axes: [1] }), idx, cx.scalar(0, labels.dtype)]);
    if (w !== undefined) w = cx.emit('gather', [weights!, cx.emit('where', [keep, labels, cx.scalar(0, labels.dtype)])], { axis: 0 });
    const keepF = cx.emit('cast', [keep], { to: x.dtype });
    w = w === undefined ? keepF : cx.emit('mul', [w, keepF]);
  }
  const picked = cx.emit('squeeze', [cx.emit('take_along_axis', [logp, safeIdx], { axis: 1 })], { axes: [1] });
  const per = cx.emit('neg', [w === undefined ? picked : cx.emit('mul', [picked, w])]);
  const out = node.outputs[0];
  let y: Val;
  if (reduction === 'none') y = cx.emit('identity', [per], {}, out);
  else if (reduction === 'sum') y = cx.emit('sum', [per], {}, out);
  else if (w === undefined) y = cx.emit('mean', [per], {}, out);
  else y = cx.emit('div', [cx.emit('sum', [per]), cx.emit('sum', [w])], {}, out);
  const lp = node.op === 'SoftmaxCrossEntropyLoss' && node.outputs[1] ? cx.emit('identity', [logp], {}, node.outputs[1]) : undefined;
  return [y, lp];
};


/**
 * Conv and ConvTranspose onto gradserve's `conv` / `conv_transpose` (OPS.md v2), when the op registry has them.
 * auto_pad is resolved for known spatial sizes; ConvTranspose's output_shape becomes the pads that give it.
 */
const conv: Handler = (cx, node) => {
  const transpose = node.op === 'ConvTranspose';
  const op = transpose ? 'conv_transpose' : 'conv';
  if (getOp(op) === undefined) unsupported(transpose ? 'transposed convolution is not in gradserve\'s op set yet' : 'convolution is not in gradserve\'s op set yet');
  const x = cx.input(node, 0);
  const w = cx.input(node, 1);
  const b = cx.get(node.inputs[2]);
  const kernel = node.ints('kernel_shape') ?? (w.shape.slice(2) as (number | null)[]).map((d) => (d === null ? unsupported('the kernel size is symbolic') : d));
  const nd = kernel.length;
  const strides = node.ints('strides') ?? kernel.map(() => 1);
  const dilations = node.ints('dilations') ?? kernel.map(() => 1);
  const groups = node.int('group', 1);
  const autoPad = autoPadOf(node);
  const ins = b === undefined ? [x, w] : [x, w, b];
  if (!transpose) {
    const pads = poolPads(node, x, kernel, strides, dilations);
    return [cx.emit('conv', ins, { strides, pads, dilations, groups }, node.outputs[0])];
  }
  const outputPadding = [...(node.ints('output_padding') ?? kernel.map(() => 0))];
  const outputShape = node.ints('output_shape');
  let pads: [number, number][];
  if (outputShape !== undefined || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) {
    // total padding = stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - out, split as ONNX does
    pads = kernel.map((k, i) => {
      const size = x.shape[2 + i];
      if (size === null || size === undefined) unsupported('output_shape / auto_pad over a symbolic spatial size');
      const out = outputShape !== undefined ? outputShape[outputShape.length - nd + i]! : size * strides[i]!;
      const total = strides[i]! * (size - 1) + outputPadding[i]! + (k - 1) * dilations[i]! + 1 - out;
      // An output larger than the full convolution: the missing positions at the end are output padding.
      if (total < 0) {
        outputPadding[i] = outputPadding[i]! - total;
        return [0, 0] as [number, number];
      }
      const half = Math.floor(total / 2);
      return autoPad === 'SAME_UPPER' ? [half, total - half] : [total - half, half];
    });
  } else if (autoPad === 'VALID') {
    pads = kernel.map(() => [0, 0]);
  } else {
    const p = node.ints('pads') ?? new Array<number>(2 * nd).fill(0);
    pads = kernel.map((_, i) => [p[i]!, p[i + nd]!]);
  }
  return [cx.emit('conv_transpose', ins, { strides, pads, dilations, groups, output_padding: outputPadding }, node.outputs[0])];
};

export const NN_OPS: Record<string, Handler> = {
  MatMul: matmul, Gemm: gemm, Conv: conv, ConvTranspose: conv, Softmax: softmax, LogSoftmax: softmax, Hardmax: softmax,
  ...Object.fromEntries(Object.keys(REDUCE).map((k) => [k, reduce])),
  ArgMax: argExtreme, ArgMin: argExtreme, CumSum: cumsum, Einsum: einsum, TopK: topk,
  LayerNormalization: layerNorm, BatchNormalization: batchNorm, InstanceNormalization: instanceNorm,
  MaxPool: pool, AveragePool: pool, GlobalAveragePool: globalPool, GlobalMaxPool: globalPool,
  LpNormalization: lpNorm, MeanVarianceNormalization: mvn,
  SoftmaxCrossEntropyLoss: loss, NegativeLogLikelihoodLoss: loss,
};
