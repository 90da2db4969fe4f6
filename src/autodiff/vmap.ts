/**
 * Vectorizes a linear derivative graph over a leading batch axis of its seed inputs (JAX's vmap, restricted to what
 * derivative graphs contain). A Jacobian then costs one pass per chunk of K basis vectors instead of one per vector:
 * the per-pass overhead is paid once per chunk and matmuls become real GEMMs.
 *
 * Every value is either batched (shape [K, ...s]) or not (shape s, shared by every basis vector). A rule rewrites one
 * node given which inputs are batched; ops without a rule make the whole graph unsupported, and the caller falls back
 * to one pass per basis vector. Shapes are concrete here (the graph comes from a planned, evaluated problem).
 */
import type { Graph, NodeSpec, ValueInfo, WireTensor } from '../graph/types.js';
import { normalizeAxis } from '../tensor/shape.js';
import { topoNodes } from './linear_plan.js';

/** Ops applied elementwise with NumPy broadcasting and no shape-dependent attributes. */
export const ELEMENTWISE = new Set([
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'mul_no_nan',
  'equal', 'not_equal', 'less', 'less_equal', 'greater', 'greater_equal', 'where',
  'neg', 'exp', 'log', 'log1p', 'expm1', 'sqrt', 'square', 'reciprocal', 'abs', 'sign', 'sin', 'cos', 'tanh',
  'sigmoid', 'relu', 'softplus', 'erf', 'gelu', 'gelu_tanh', 'sigmoid_grad', 'tanh_grad', 'relu_grad', 'gelu_grad',
  'gelu_tanh_grad', 'erf_grad', 'identity', 'stop_gradient', 'cast', 'clip',
]);
export const REDUCTIONS = new Set(['sum', 'mean', 'max', 'min', 'prod', 'logsumexp']);
/** Ops whose batched form is a reshape of the batched input to [K, ...output shape]. */
const RESHAPES = new Set(['reshape', 'squeeze', 'unsqueeze', 'reshape_like']);

/**
 * Per-vector product size up to which an unbatched-times-batched product is rewritten as one wide GEMM plus
 * transposes. Above it the K products are big enough that the kernel's batched GEMM loop wins (measured: K = 256 outer
 * products of 256 x 256 take 32 ms batched vs 115 ms as one wide GEMM and a transpose).
 */
const SMALL_PRODUCT = 16384;

export const LOSSES = new Set(['mse', 'binary_cross_entropy_with_logits', 'softmax_cross_entropy']);

/**
 * The convolution family, by the layout of each operand and of the result: `data` is (N, channels, *spatial), `weight`
 * (channels, ...) and `bias` (channels). K convolutions at once are one convolution with K times the groups, its data
 * operands laid out as [N, K*channels, ...] and its weight and bias operands as [K*channels, ...] (the groups of
 * basis vector k come k-th, and within them the op's own groups in order).
 */
const CONV_LAYOUTS: Record<string, { inputs: readonly ('data' | 'weight' | 'bias')[]; output: 'data' | 'weight' }> = {
  conv: { inputs: ['data', 'weight', 'bias'], output: 'data' },
  conv_transpose: { inputs: ['data', 'weight', 'bias'], output: 'data' },
  conv_weight_grad: { inputs: ['data', 'data', 'weight'], output: 'weight' },
  conv_input_grad: { inputs: ['data', 'weight', 'data'], output: 'data' },
};

/** Rank of a loss's per-example output (reduction 'none'), from the unbatched operand shapes. */
function perExampleRank(op: string, ins: { shape: number[] }[]): number {
  if (op === 'softmax_cross_entropy') return ins[0]!.shape.length - 1;
  return Math.max(...ins.map((v) => v.shape.length));
}

export interface VmapResult {
  graph: Graph;
  /** Whether each output of the graph carries the batch axis. */
  batchedOutputs: Record<string, boolean>;
}

export class Unbatchable extends Error {}

interface Val {
  name: string;
  batched: boolean;
  shape: number[];
  dtype: string;
}

function numelOf(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

function normAxes(axes: unknown, rank: number): number[] {
  if (axes === null || axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : (axes as number[]);
  return list.map((a) => {
    const n = normalizeAxis(a, rank);
    if (n === undefined) throw new Unbatchable(`axis ${a} out of range`);
    return n;
  });
}

function axisOf(axis: unknown, rank: number, dflt: number): number {
  const a = axis === undefined || axis === null ? dflt : (axis as number);
  const n = normalizeAxis(a, rank);
  if (n === undefined) throw new Unbatchable(`axis ${a} out of range`);
  return n;
}

/**
 * Rewrites `graph` so each seed input takes a leading batch axis of size K. `shapes` holds the unbatched shape and
 * datatype of every value. Throws Unbatchable when an op has no batching rule.
 */
export function vmapGraph(graph: Graph, seeds: readonly string[], shapes: Record<string, ValueInfo>, K: number): VmapResult {
  const taken = new Set<string>([...Object.keys(graph.inputs ?? {}), ...Object.keys(graph.constants ?? {}), ...graph.nodes.map((n) => n.name)]);
  const nodes: NodeSpec[] = [];
  const constants: Record<string, WireTensor> = { ...(graph.constants ?? {}) };
  const vals = new Map<string, Val>();
  const info = (name: string): ValueInfo => {
    const s = shapes[name];
    if (!s) throw new Unbatchable(`no shape for "${name}"`);
    return s;
  };
  for (const name of [...Object.keys(graph.inputs ?? {}), ...Object.keys(graph.constants ?? {})]) {
    const s = info(name);
    vals.set(name, { name, batched: seeds.includes(name), shape: [...s.shape], dtype: s.datatype });
  }
  let counter = 0;
  const fresh = (base: string): string => {
    let n: string;
    do n = `${base}::vmap${counter++}`; while (taken.has(n));
    taken.add(n);
    return n;
  };
  const emit = (name: string, op: string, inputs: string[], attrs?: Record<string, unknown>): string => {
    nodes.push(attrs === undefined ? { name, op, inputs } : { name, op, inputs, attrs });
    return name;
  };
  const reshape = (base: string, v: Val, shape: number[], name?: string): string =>
    emit(name ?? fresh(base), 'reshape', [v.name], { shape });
  /** A batched value lifted to `rank` unbatched dims by inserting 1s after the batch axis. */
  const lift = (base: string, v: Val, rank: number): string =>
    v.shape.length >= rank ? v.name : reshape(base, v, [K, ...Array(rank - v.shape.length).fill(1), ...v.shape]);
  /** Zeros of a shape, as a carrier of that shape for ops that read only the shape of an input. */
  const zerosOf = (base: string, dtype: string, shape: number[]): string => {
    const c = fresh(base);
    constants[c] = { shape: [], datatype: dtype, data: [0] };
    return emit(fresh(base), 'broadcast_to', [c], { shape });
  };
  /** Any value as a batched one (copies an unbatched value K times). */
  const tile = (base: string, v: Val): string =>
    v.batched ? v.name : emit(fresh(base), 'broadcast_to', [v.name], { shape: [K, ...v.shape] });

  for (const node of topoNodes(graph)) {
    const ins = node.inputs.map((i) => {
      const v = vals.get(i);
      if (!v) throw new Unbatchable(`unknown value "${i}"`);
      return v;
    });
    const out = info(node.name);
    const outShape = [...out.shape];
    const attrs = node.attrs ?? {};
    const name = node.name;
    const set = (batched: boolean): void => {
      vals.set(name, { name, batched, shape: outShape, dtype: out.datatype });
    };
    if (!ins.some((v) => v.batched)) {
      nodes.push(node);
      set(false);
      continue;
    }
    const x = ins[0]!;
    const op = node.op;
    if (ELEMENTWISE.has(op)) {
      const rank = Math.max(...ins.map((v) => v.shape.length));
      emit(name, op, ins.map((v) => (v.batched ? lift(name, v, rank) : v.name)), node.attrs);
      set(true);
    } else if (REDUCTIONS.has(op)) {
      if (ins.length !== 1) throw new Unbatchable(op);
      emit(name, op, [x.name], { ...attrs, axes: normAxes(attrs.axes, x.shape.length).map((a) => a + 1) });
      set(true);
    } else if (RESHAPES.has(op) && x.batched) {
      reshape(name, x, [K, ...outShape], name);
      set(true);
    } else if ((op === 'reshape_like' || op === 'broadcast_like' || op === 'sum_to_like') && !x.batched) {
      // Only the shape of the second input matters, and that is the same for every basis vector.
      if (op === 'sum_to_like') sumTo(x, false);
      else emit(name, op === 'reshape_like' ? 'reshape' : 'broadcast_to', [x.name], { shape: outShape });
      set(false);
    } else if (op === 'zeros_like' || op === 'ones_like') {
      const c = fresh(name);
      constants[c] = { shape: [], datatype: out.datatype, data: [op === 'zeros_like' ? 0 : 1] };
      emit(name, 'broadcast_to', [c], { shape: outShape });
      set(false);
    } else if (op === 'broadcast_to' || op === 'broadcast_like') {
      emit(name, 'broadcast_to', [lift(name, x, outShape.length)], { shape: [K, ...outShape] });
      set(true);
    } else if (op === 'sum_to_like') {
      sumTo(x, true);
      set(true);
    } else if (LOSSES.has(op)) {
      // Per-example losses batch like any op once every operand carries the batch axis; the reduction must then skip
      // that axis, so it runs as its own node.
      const rank = op === 'mse' ? Math.max(...ins.map((v) => v.shape.length)) : -1;
      const operands = ins.map((v) => {
        if (rank < 0) return tile(name, v);
        if (v.batched) return lift(name, v, rank);
        return emit(fresh(name), 'broadcast_to', [v.name], { shape: [K, ...Array(rank - v.shape.length).fill(1), ...v.shape] });
      });
      const reduction = (attrs.reduction as string | undefined) ?? 'mean';
      const perAttrs: Record<string, unknown> = { ...attrs, reduction: 'none' };
      if (op === 'softmax_cross_entropy') perAttrs.axis = axisOf(attrs.axis, x.shape.length, -1) + 1;
      if (reduction === 'none') {
        emit(name, op, operands, perAttrs);
      } else {
        const per = emit(fresh(name), op, operands, perAttrs);
        const perRank = perExampleRank(op, ins);
        emit(name, reduction === 'sum' ? 'sum' : 'mean', [per], { axes: Array.from({ length: perRank }, (_, i) => i + 1), keepdims: false });
      }
      set(true);
    } else if (op === 'argmax' || op === 'argmin') {
      if (attrs.axis === null || attrs.axis === undefined) {
        // NumPy's flattened index: flatten everything but the batch axis.
        const flat = reshape(name, x, [K, numelOf(x.shape)]);
        const idx = emit(fresh(name), op, [flat], { axis: 1, keepdims: false });
        emit(name, 'reshape', [idx], { shape: [K, ...outShape] });
      } else {
        emit(name, op, [x.name], { ...attrs, axis: axisOf(attrs.axis, x.shape.length, 0) + 1 });
      }
      set(true);
    } else if (op === 'softmax' || op === 'log_softmax') {
      emit(name, op, [x.name], { ...attrs, axis: axisOf(attrs.axis, x.shape.length, -1) + 1 });
      set(true);
    } else if (op === 'transpose') {
      const r = x.shape.length;
      const perm = (attrs.perm as number[] | undefined | null) ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      emit(name, op, [x.name], { ...attrs, perm: [0, ...perm.map((p) => axisOf(p, r, 0) + 1)] });
      set(true);
    } else if (op === 'slice' && ins.length === 1) {
      const starts = attrs.starts as number[];
      const axes = (attrs.axes as number[] | undefined | null) ?? starts.map((_, i) => i);
      emit(name, op, [x.name], { ...attrs, axes: axes.map((a) => axisOf(a, x.shape.length, 0) + 1) });
      set(true);
    } else if (op === 'pad' && ins.length === 1) {
      emit(name, op, [x.name], { ...attrs, pads: [[0, 0], ...(attrs.pads as unknown[])] });
      set(true);
    } else if (op === 'concat' || op === 'stack') {
      const rank = op === 'concat' ? x.shape.length : x.shape.length + 1;
      emit(name, op, ins.map((v) => tile(name, v)), { ...attrs, axis: axisOf(attrs.axis, rank, 0) + 1 });
      set(true);
    } else if (op === 'gather' && x.batched && !ins[1]!.batched) {
      emit(name, op, [x.name, ins[1]!.name], { ...attrs, axis: axisOf(attrs.axis, x.shape.length, 0) + 1 });
      set(true);
    } else if (op === 'matmul') {
      matmul(ins[0]!, ins[1]!);
      set(true);
    } else if (op === 'matmul_t') {
      matmulT(ins[0]!, ins[1]!, attrs.trans_a === true, attrs.trans_b === true);
      set(true);
    } else if ((op === 'conv' || op === 'conv_transpose') && x.batched && ins.slice(1).every((v) => !v.batched)) {
      // Only the images are batched: the basis vectors are more images, [K, N, ...] read as [K*N, ...].
      const images = reshape(name, x, [K * x.shape[0]!, ...x.shape.slice(1)]);
      const y = emit(fresh(name), op, [images, ...ins.slice(1).map((v) => v.name)], node.attrs);
      emit(name, 'reshape', [y], { shape: [K, ...outShape] });
      set(true);
    } else if (CONV_LAYOUTS[op] !== undefined) {
      convGroups(CONV_LAYOUTS[op]!);
      set(true);
    } else if (op === 'numel_like') {
      // Depends on the shape only; the batch axis must not be counted.
      emit(name, op, [x.name], { ...attrs, axes: normAxes(attrs.axes, x.shape.length).map((a) => a + 1) });
      set(false);
    } else if (op === 'one_hot_like') {
      // The logits only carry the class count and datatype, which every basis vector shares.
      const [labels, logits] = ins as [Val, Val];
      const axis = axisOf(attrs.axis, logits.shape.length, -1);
      if (labels.batched) {
        const carrier = logits.batched ? logits.name : zerosOf(name, logits.dtype, [K, ...logits.shape]);
        emit(name, op, [labels.name, carrier], { ...attrs, axis: axis + 1 });
      } else {
        emit(name, op, [labels.name, zerosOf(name, logits.dtype, logits.shape)], { ...attrs, axis });
      }
      set(labels.batched);
    } else if (op === 'concat_part' && x.batched) {
      const axis = axisOf(attrs.axis, x.shape.length, 0);
      const index = attrs.index as number;
      let start = 0;
      for (let i = 1; i <= index; i++) start += ins[i]!.shape[axis]!;
      emit(name, 'slice', [x.name], { starts: [start], ends: [start + ins[index + 1]!.shape[axis]!], axes: [axis + 1] });
      set(true);
    } else if ((op === 'slice_grad' || op === 'scatter_add_like') && x.batched) {
      // The last input only carries the output shape, which now has the batch axis in front.
      const like = ins[ins.length - 1]!;
      const carrier = like.batched ? like.name : zerosOf(name, like.dtype, [K, ...like.shape]);
      const mid = ins.slice(1, -1).map((v) => v.name);
      if (ins.slice(1, -1).some((v) => v.batched)) throw new Unbatchable(`batched indices in "${name}"`);
      const a = op === 'slice_grad'
        ? { ...attrs, axes: ((attrs.axes as number[] | undefined | null) ?? (attrs.starts as number[]).map((_, i) => i)).map((ax) => axisOf(ax, like.shape.length, 0) + 1) }
        : { ...attrs, axis: axisOf(attrs.axis, like.shape.length, 0) + 1 };
      emit(name, op, [x.name, ...mid, carrier], a);
      set(true);
    } else {
      throw new Unbatchable(`no batching rule for op "${op}" (node "${name}")`);
    }

    function sumTo(g: Val, batched: boolean): void {
      const lead = g.shape.length - outShape.length;
      const axes: number[] = [];
      for (let i = 0; i < g.shape.length; i++) if (i < lead || (outShape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
      const off = batched ? 1 : 0;
      const target = batched ? [K, ...outShape] : outShape;
      if (axes.length === 0) {
        reshape(name, g, target, name);
        return;
      }
      const summed = emit(fresh(name), 'sum', [g.name], { axes: axes.map((a) => a + off), keepdims: true });
      emit(name, 'reshape', [summed], { shape: target });
    }

    function convGroups(layout: (typeof CONV_LAYOUTS)[string]): void {
      const operands = ins.map((v, i) => {
        const all = tile(name, v);
        if (layout.inputs[i] !== 'data') return emit(fresh(name), 'reshape', [all], { shape: [K * v.shape[0]!, ...v.shape.slice(1)] });
        // [K, N, C, ...] -> [N, K, C, ...] -> [N, K*C, ...]
        const [n, c, ...rest] = v.shape as [number, number, ...number[]];
        const t = emit(fresh(name), 'transpose', [all], { perm: [1, 0, ...v.shape.slice(1).map((_, j) => j + 2)] });
        return emit(fresh(name), 'reshape', [t], { shape: [n, K * c, ...rest] });
      });
      const groups = ((attrs.groups as number | undefined) ?? 1) * K;
      const y = emit(fresh(name), op, operands, { ...attrs, groups });
      if (layout.output === 'weight') {
        emit(name, 'reshape', [y], { shape: [K, ...outShape] });
        return;
      }
      const [n, c, ...rest] = outShape as [number, number, ...number[]];
      const split = emit(fresh(name), 'reshape', [y], { shape: [n, K, c, ...rest] });
      emit(name, 'transpose', [split], { perm: [1, 0, ...outShape.slice(1).map((_, j) => j + 2)] });
    }

    function matmulT(a: Val, b: Val, ta: boolean, tb: boolean): void {
      const mt = (l: string, r: string, x: boolean, y: boolean): string => emit(fresh(name), 'matmul_t', [l, r], { trans_a: x, trans_b: y });
      if (a.batched && !b.batched && !ta && b.shape.length === 2) {
        // [K, ..., m, k] . op(b): fold the batch into the rows of one GEMM.
        const rows = reshape(name, a, [K * numelOf(a.shape.slice(0, -1)), a.shape[a.shape.length - 1]!]);
        emit(name, 'reshape', [mt(rows, b.name, false, tb)], { shape: [K, ...outShape] });
        return;
      }
      if (!a.batched && b.batched && a.shape.length === 2 && b.shape.length === 2 && numelOf(outShape) <= SMALL_PRODUCT) {
        const m = outShape[0]!;
        const n = outShape[1]!;
        if (tb) {
          // op(a) . b_i^T = (b_i . op(a)^T)^T: stack the b_i as rows of one GEMM.
          const rows = reshape(name, b, [K * b.shape[0]!, b.shape[1]!]);
          const r3 = emit(fresh(name), 'reshape', [mt(rows, a.name, false, !ta)], { shape: [K, n, m] });
          emit(name, 'transpose', [r3], { perm: [0, 2, 1] });
        } else {
          // op(a) . [b_1 ... b_K] laid side by side as [k, K*n].
          const k = b.shape[0]!;
          const t1 = emit(fresh(name), 'transpose', [b.name], { perm: [1, 0, 2] });
          const wide = emit(fresh(name), 'reshape', [t1], { shape: [k, K * n] });
          const r3 = emit(fresh(name), 'reshape', [mt(a.name, wide, ta, false)], { shape: [m, K, n] });
          emit(name, 'transpose', [r3], { perm: [1, 0, 2] });
        }
        return;
      }
      const rank = Math.max(a.shape.length, b.shape.length);
      const l = a.batched ? lift(name, a, rank) : a.name;
      const r = b.batched ? lift(name, b, rank) : b.name;
      emit(name, 'reshape', [mt(l, r, ta, tb)], { shape: [K, ...outShape] });
    }

    function matmul(a: Val, b: Val): void {
      // Promote 1-D operands as np.matmul does; the final reshape to [K, ...out] drops the promoted axes again.
      let an = a.name;
      let as = a.shape;
      let bn = b.name;
      let bs = b.shape;
      if (as.length === 1) {
        as = [1, as[0]!];
        an = reshape(name, a, a.batched ? [K, ...as] : as);
      }
      if (bs.length === 1) {
        bs = [bs[0]!, 1];
        bn = reshape(name, b, b.batched ? [K, ...bs] : bs);
      }
      const A: Val = { ...a, name: an, shape: as };
      const B: Val = { ...b, name: bn, shape: bs };
      if (A.batched && !B.batched && bs.length === 2) {
        // [K, ..., m, k] @ [k, n]: fold the batch into the rows of one GEMM.
        const rows = reshape(name, A, [K * numelOf(as.slice(0, -1)), as[as.length - 1]!]);
        const prod = emit(fresh(name), 'matmul', [rows, bn]);
        emit(name, 'reshape', [prod], { shape: [K, ...outShape] });
        return;
      }
      if (!A.batched && B.batched && as.length === 2 && bs.length === 2 && numelOf(outShape) <= SMALL_PRODUCT) {
        // [m, k] @ [K, k, n]: one GEMM against the batch laid side by side as [k, K*n].
        const [k, n] = bs as [number, number];
        const t1 = emit(fresh(name), 'transpose', [bn], { perm: [1, 0, 2] });
        const wide = emit(fresh(name), 'reshape', [t1], { shape: [k, K * n] });
        const prod = emit(fresh(name), 'matmul', [an, wide]);
        const m = as[0]!;
        const r3 = emit(fresh(name), 'reshape', [prod], { shape: [m, K, n] });
        const t2 = emit(fresh(name), 'transpose', [r3], { perm: [1, 0, 2] });
        emit(name, 'reshape', [t2], { shape: [K, ...outShape] });
        return;
      }
      const rank = Math.max(as.length, bs.length);
      const l = A.batched ? lift(name, A, rank) : an;
      const r = B.batched ? lift(name, B, rank) : bn;
      const prod = emit(fresh(name), 'matmul', [l, r]);
      emit(name, 'reshape', [prod], { shape: [K, ...outShape] });
    }
  }

  const inputs: Record<string, { shape?: (number | null)[]; datatype?: string }> = {};
  for (const [n, spec] of Object.entries(graph.inputs ?? {})) {
    inputs[n] = seeds.includes(n) ? { shape: [K, ...info(n).shape], datatype: info(n).datatype } : spec;
  }
  const batchedOutputs: Record<string, boolean> = {};
  for (const o of graph.outputs ?? []) batchedOutputs[o] = vals.get(o)?.batched ?? false;
  return { graph: { inputs, constants, nodes, outputs: [...(graph.outputs ?? [])] }, batchedOutputs };
}
