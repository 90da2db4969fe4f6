/**
 * Shape and data-movement ONNX ops. Their shape operands (Reshape's shape, Slice's starts, Tile's repeats, ...) must
 * be known at import: gradserve takes them as attributes. Shape-only subgraphs (Shape, then Gather, Slice, Concat,
 * arithmetic) are folded here in JS; an entry that depends on a symbolic input dimension is NaN and fails only where
 * it is needed (a Reshape may still take one unknown entry as its -1).
 */
import type { DType } from '../tensor/dtype.js';
import type { Dim } from '../tensor/shape.js';
import { type ImportContext, type OnnxNode, type StaticVal, type Val, staticFromValues, unsupported } from './context.js';
import { castTarget, foldable } from './ops_elementwise.js';
import { tensorFromProto } from './tensors.js';
import type { Handler } from './handlers.js';

function normAxis(axis: number, rank: number, node: OnnxNode): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) unsupported(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

const known = (s: Dim[]): s is number[] => s.every((d) => d !== null);
const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** The values of a static input, or of an attribute in older opsets. */
function intsFrom(cx: ImportContext, node: OnnxNode, input: number, attr: string | undefined, what: string): number[] | undefined {
  if (attr !== undefined && node.has(attr)) return node.ints(attr);
  if (node.inputs[input] === undefined || node.inputs[input] === '') return undefined;
  return cx.knownInts(node, cx.staticInput(node, input, what), what);
}

/** Row-major strides of a shape. */
function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** A static value with a new shape (same values). */
function reshaped(v: StaticVal, shape: number[]): StaticVal {
  return staticFromValues(v.dtype, shape, v.values!);
}

const shapeOp: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const rank = x.shape.length;
  let start = node.int('start', 0);
  let end = node.int('end', rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = Math.min(Math.max(start, 0), rank);
  end = Math.min(Math.max(end, 0), rank);
  const dims = x.shape.slice(start, Math.max(start, end)).map((d) => (d === null ? NaN : d));
  return [staticFromValues('INT64', [dims.length], dims)];
};

const sizeOp: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  return [staticFromValues('INT64', [], [x.shape.some((d) => d === null) ? NaN : prod(x.shape as number[])])];
};

/** Reshape's target: ONNX's 0 copies the input's dimension (unless allowzero), -1 is inferred. */
function reshapeTarget(x: Val, spec: number[], allowzero: boolean, node: OnnxNode): (number | null)[] {
  return spec.map((s, i) => {
    if (Number.isNaN(s)) return null;
    if (s === 0 && !allowzero) {
      if (i >= x.shape.length) unsupported(`its shape copies dimension ${i} (a 0), which the rank-${x.shape.length} input lacks`);
      return x.shape[i]!;
    }
    return s;
  });
}

/** gradserve's reshape `shape`: at most one unknown entry, written -1. */
function toReshapeAttr(target: (number | null)[], x: Val): number[] {
  const unknown = target.filter((d) => d === null || d === -1).length;
  if (unknown > 1) {
    if (known(x.shape) && target.every((d) => d !== null)) return target as number[];
    unsupported(`its target shape [${target.map((d) => (d === null ? '?' : d)).join(', ')}] has more than one size that depends on a symbolic dimension; fix them with ?dims=<name>:<size>`);
  }
  return target.map((d) => (d === null ? -1 : d));
}

function reshapeTo(cx: ImportContext, node: OnnxNode, x: Val, shape: number[]): Val {
  if (x.kind === 'static' && x.values !== undefined) {
    const n = x.values.length;
    const fixed = shape.map((d) => (d === -1 ? n / Math.max(1, prod(shape.filter((e) => e !== -1))) : d));
    return reshaped(x, fixed);
  }
  return cx.emit('reshape', [x], { shape }, node.outputs[0]);
}

const reshape: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const spec = node.opset < 5 ? node.ints('shape') ?? [] : cx.staticInput(node, 1, 'shape');
  const target = reshapeTarget(x, spec, node.int('allowzero', 0) === 1, node);
  return [reshapeTo(cx, node, x, toReshapeAttr(target, x))];
};

const flatten: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const rank = x.shape.length;
  let axis = node.int('axis', 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) unsupported(`axis ${node.int('axis', 1)} is out of range for rank ${rank}`);
  const part = (s: Dim[]) => (known(s) ? prod(s) : null);
  return [reshapeTo(cx, node, x, toReshapeAttr([part(x.shape.slice(0, axis)), part(x.shape.slice(axis))], x))];
};

const squeeze: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const axes = intsFrom(cx, node, 1, node.opset < 13 ? 'axes' : undefined, 'axes');
  const rank = x.shape.length;
  const ax = axes?.map((a) => normAxis(a, rank, node));
  if (x.kind === 'static' && x.values !== undefined) {
    const shape = x.shape.filter((d, i) => (ax === undefined ? d !== 1 : !ax.includes(i)));
    return [reshaped(x, shape)];
  }
  return [cx.emit('squeeze', [x], ax === undefined ? {} : { axes: ax }, node.outputs[0])];
};

const unsqueeze: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const axes = intsFrom(cx, node, 1, node.opset < 13 ? 'axes' : undefined, 'axes');
  if (axes === undefined) unsupported('it has no axes');
  const rank = x.shape.length + axes.length;
  const ax = axes.map((a) => normAxis(a, rank, node));
  if (x.kind === 'static' && x.values !== undefined) {
    const shape: number[] = [];
    let k = 0;
    for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[k++]!);
    return [reshaped(x, shape)];
  }
  return [cx.emit('unsqueeze', [x], { axes: ax }, node.outputs[0])];
};

const expand: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const spec = cx.staticInput(node, 1, 'shape');
  // ONNX broadcasts both ways: a 1 in the requested shape keeps the input's dimension.
  const rank = Math.max(spec.length, x.shape.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const a = i - (rank - x.shape.length) >= 0 ? x.shape[i - (rank - x.shape.length)]! : 1;
    const b = i - (rank - spec.length) >= 0 ? spec[i - (rank - spec.length)]! : 1;
    const bd = Number.isNaN(b) ? null : b;
    if (bd === 1) out.push(a);
    else if (a === 1) out.push(bd);
    else if (a === null || bd === null) out.push(a ?? bd);
    else if (a !== bd) unsupported(`shape [${x.shape.join(', ')}] does not broadcast to [${spec.join(', ')}]`);
    else out.push(a);
  }
  if (!known(out)) unsupported(`its result shape depends on a symbolic dimension; fix it with ?dims=<name>:<size>`);
  if (x.kind === 'static' && x.values !== undefined && prod(out) <= 1 << 16) {
    const f = foldable([x]);
    if (f !== undefined) {
      const st = strides(out);
      const xs = new Array<number>(x.shape.length).fill(0);
      for (let i = x.shape.length - 1, acc = 1; i >= 0; i--) { xs[i] = x.shape[i] === 1 ? 0 : acc; acc *= x.shape[i] as number; }
      const vals = new Array<number>(prod(out));
      for (let k = 0; k < vals.length; k++) {
        let off = 0;
        for (let i = 0; i < rank; i++) {
          const j = i - (rank - x.shape.length);
          if (j >= 0) off += Math.floor(k / st[i]!) % out[i]! * xs[j]!;
        }
        vals[k] = x.values[off]!;
      }
      return [staticFromValues(x.dtype, out, vals)];
    }
  }
  if (out.length === x.shape.length && out.every((d, i) => d === x.shape[i])) return [cx.emit('identity', [x], {}, node.outputs[0])];
  return [cx.emit('broadcast_to', [x], { shape: out }, node.outputs[0])];
};

const concat: Handler = (cx, node) => {
  const xs = node.inputs.filter((n) => n !== '').map((n) => cx.get(n)!);
  const rank = xs[0]!.shape.length;
  const axis = normAxis(node.int('axis', 0), rank, node);
  const nonEmpty = xs.filter((x) => x.shape[axis] !== 0);
  const f = foldable(xs);
  if (f !== undefined && rank === 1) {
    return [staticFromValues(xs[0]!.dtype, [f.reduce((s, v) => s + v.values!.length, 0)], f.flatMap((v) => v.values!))];
  }
  const parts = nonEmpty.length > 0 ? nonEmpty : xs.slice(0, 1);
  return [cx.emit('concat', parts, { axis }, node.outputs[0])];
};

/** Python slicing of one axis of size n: the positions taken. */
function slicePositions(n: number, start: number, end: number, step: number): number[] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + n : start;
  let e = end < 0 ? end + n : end;
  const out: number[] = [];
  if (step > 0) {
    s = clamp(s, 0, n);
    e = clamp(e, 0, n);
    for (let i = s; i < e; i += step) out.push(i);
  } else {
    s = clamp(s, -1, n - 1);
    e = clamp(e, -1, n - 1);
    for (let i = s; i > e; i += step) out.push(i);
  }
  return out;
}

const slice: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const rank = x.shape.length;
  let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
  if (node.opset < 10) {
    starts = node.ints('starts') ?? [];
    ends = node.ints('ends') ?? [];
    axes = node.ints('axes');
  } else {
    starts = cx.knownInts(node, cx.staticInput(node, 1, 'starts'), 'starts');
    ends = cx.knownInts(node, cx.staticInput(node, 2, 'ends'), 'ends');
    axes = intsFrom(cx, node, 3, undefined, 'axes');
    steps = intsFrom(cx, node, 4, undefined, 'steps');
  }
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, rank, node));
  const st = steps ?? starts.map(() => 1);
  if (st.some((s) => s === 0)) unsupported('a step is 0');
  if (x.kind === 'static' && x.values !== undefined && rank === 1) {
    const pos = ax.length === 0 ? x.values.map((_, i) => i) : slicePositions(x.shape[0]!, starts[0]!, ends[0]!, st[0]!);
    return [staticFromValues(x.dtype, [pos.length], pos.map((i) => x.values![i]!))];
  }
  // INT64 extremes ("to the end") are clamped like any other bound.
  const big = (v: number) => Math.max(Math.min(v, 2 ** 53), -(2 ** 53));
  return [cx.emit('slice', [x], { starts: starts.map(big), ends: ends.map(big), axes: ax, steps: st }, node.outputs[0])];
};

const split: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const rank = x.shape.length;
  const axis = normAxis(node.int('axis', 0), rank, node);
  const n = x.shape[axis];
  let sizes = node.opset < 13 ? node.ints('split') : intsFrom(cx, node, 1, undefined, 'split');
  const count = node.outputs.length;
  if (sizes === undefined) {
    if (n === null) unsupported(`it splits a symbolic dimension; fix it with ?dims=<name>:<size>`);
    const parts = node.int('num_outputs') ?? count;
    const each = Math.ceil(n / parts);
    sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(each, n - i * each)));
  }
  const outs: Val[] = [];
  let at = 0;
  sizes.forEach((s, i) => {
    const name = node.outputs[i];
    if (name !== undefined && name !== '') outs.push(cx.emit('slice', [x], { starts: [at], ends: [at + s], axes: [axis] }, name));
    else outs.push(undefined as unknown as Val);
    at += s;
  });
  return outs;
};

const gather: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const idx = cx.input(node, 1);
  const axis = normAxis(node.int('axis', 0), x.shape.length, node);
  const f = foldable([x, idx]);
  if (f !== undefined && known(x.shape)) {
    const n = x.shape[axis]!;
    const outer = prod(x.shape.slice(0, axis));
    const inner = prod(x.shape.slice(axis + 1));
    const ids = idx.kind === 'static' ? idx.values! : [];
    const vals: number[] = [];
    for (let o = 0; o < outer; o++) {
      for (const raw of ids) {
        const i = raw < 0 ? raw + n : raw;
        if (!(i >= 0 && i < n)) unsupported(`index ${raw} is out of range for an axis of size ${n}`);
        for (let k = 0; k < inner; k++) vals.push(f[0]!.values![(o * n + i) * inner + k]!);
      }
    }
    return [staticFromValues(x.dtype, [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)] as number[], vals)];
  }
  return [cx.emit('gather', [x, idx], { axis }, node.outputs[0])];
};

const gatherElements: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const idx = cx.input(node, 1);
  return [cx.emit('take_along_axis', [x, idx], { axis: normAxis(node.int('axis', 0), x.shape.length, node) }, node.outputs[0])];
};

const scatterElements: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const idx = cx.input(node, 1);
  const upd = cx.input(node, 2);
  const axis = normAxis(node.int('axis', 0), x.shape.length, node);
  const reduction = node.string('reduction', 'none');
  if (reduction === 'add') return [cx.emit('scatter_add', [x, idx, upd], { axis }, node.outputs[0])];
  if (reduction !== 'none') unsupported(`reduction "${reduction}" (gradserve scatters with add, or replaces)`);
  // Replacement: where any index lands, the scattered updates; elsewhere x.
  const zeros = cx.emit('zeros_like', [x]);
  const hits = cx.emit('scatter_add', [zeros, idx, cx.emit('ones_like', [upd])], { axis });
  const placed = cx.emit('scatter_add', [zeros, idx, upd], { axis });
  return [cx.emit('where', [cx.emit('greater', [hits, cx.scalar(0, x.dtype)]), placed, x], {}, node.outputs[0])];
};

const tile: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const repeats = cx.knownInts(node, cx.staticInput(node, 1, 'repeats'), 'repeats');
  return [cx.emit('tile', [x], { repeats }, node.outputs[0])];
};

const pad: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const mode = node.string('mode', 'constant');
  if (mode !== 'constant') unsupported(`mode "${mode}" (gradserve pads with a constant)`);
  const rank = x.shape.length;
  let pads: number[];
  let value = 0;
  let axes: number[] | undefined;
  if (node.opset < 11) {
    pads = node.ints('pads') ?? [];
    value = node.float('value', 0);
  } else {
    pads = cx.knownInts(node, cx.staticInput(node, 1, 'pads'), 'pads');
    const v = cx.get(node.inputs[2]);
    if (v !== undefined) {
      if (v.kind !== 'static' || v.values === undefined) unsupported('its constant_value is computed at run time');
      value = v.values[0] ?? 0;
    }
    axes = intsFrom(cx, node, 3, undefined, 'axes');
  }
  const ax = (axes ?? Array.from({ length: rank }, (_, i) => i)).map((a) => normAxis(a, rank, node));
  const k = ax.length;
  if (pads.length !== 2 * k) unsupported(`it has ${pads.length} pads for ${k} axes`);
  const pairs: [number, number][] = Array.from({ length: rank }, () => [0, 0]);
  ax.forEach((a, i) => { pairs[a] = [pads[i]!, pads[i + k]!]; });
  let y: Val = x;
  // Negative pads crop: a slice first, then the (non-negative) padding.
  if (pairs.some(([b, e]) => b < 0 || e < 0)) {
    const starts = pairs.map(([b]) => Math.max(0, -b));
    const ends = pairs.map(([, e], i) => (e < 0 ? e : 2 ** 53));
    y = cx.emit('slice', [y], { starts, ends, axes: pairs.map((_, i) => i) });
  }
  return [cx.emit('pad', [y], { pads: pairs.map(([b, e]) => [Math.max(b, 0), Math.max(e, 0)]), value }, node.outputs[0])];
};

const transpose: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const perm = node.ints('perm');
  return [cx.emit('transpose', [x], perm === undefined ? {} : { perm }, node.outputs[0])];
};

const dropout: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const training = cx.get(node.inputs[2]);
  if (training !== undefined && !(training.kind === 'static' && training.values?.[0] === 0)) unsupported('training mode (random masks)');
  const y = cx.emit('identity', [x], {}, node.outputs[0]);
  const maskName = node.outputs[1];
  if (maskName === undefined || maskName === '') return [y];
  const ones = cx.emit('ones_like', [x]);
  return [y, cx.emit('cast', [ones], { to: 'BOOL' }, maskName)];
};

const constant: Handler = (cx, node) => {
  const t = cx.tensorAttr(node, 'value');
  if (t !== undefined) return [t];
  if (node.has('value_float')) return [staticFromValues('FP32', [], [node.float('value_float', 0)])];
  if (node.has('value_floats')) { const v = node.floats('value_floats')!; return [staticFromValues('FP32', [v.length], v)]; }
  if (node.has('value_int')) return [staticFromValues('INT64', [], [node.int('value_int', 0)])];
  if (node.has('value_ints')) { const v = node.ints('value_ints')!; return [staticFromValues('INT64', [v.length], v)]; }
  unsupported('its value is a sparse tensor or a string');
};

const constantOfShape: Handler = (cx, node) => {
  const shape = cx.knownInts(node, cx.staticInput(node, 0, 'shape'), 'shape');
  const v = cx.tensorAttr(node, 'value');
  const dtype: DType = v?.dtype ?? 'FP32';
  const fill = v?.values?.[0] ?? 0;
  const n = prod(shape);
  if (n <= 1 << 16) return [staticFromValues(dtype, shape, new Array<number>(n).fill(fill))];
  return [cx.emit('broadcast_to', [cx.scalar(fill, dtype)], { shape }, node.outputs[0])];
};

const range: Handler = (cx, node) => {
  const [start, limit, delta] = [0, 1, 2].map((i) => {
    const v = cx.knownInts(node, cx.staticInput(node, i, ['start', 'limit', 'delta'][i]!), ['start', 'limit', 'delta'][i]!);
    return v[0]!;
  });
  const dtype = cx.input(node, 0).dtype;
  const n = Math.max(Math.ceil((limit! - start!) / delta!), 0);
  if (n > 1 << 24) unsupported(`it would make ${n} elements`);
  return [staticFromValues(dtype, [n], Array.from({ length: n }, (_, i) => start! + i * delta!))];
};

const oneHot: Handler = (cx, node) => {
  let idx = cx.input(node, 0);
  const depth = cx.knownInts(node, cx.staticInput(node, 1, 'depth'), 'depth')[0]!;
  const values = cx.input(node, 2);
  const axis = node.int('axis', -1);
  if (idx.dtype !== 'INT32' && idx.dtype !== 'INT64') idx = cx.emit('cast', [idx], { to: 'INT64' });
  // ONNX counts negative indices from the end (-1 is depth - 1); gradserve gives them an all-zero row.
  const wrapped = cx.emit('where', [cx.emit('less', [idx, cx.scalar(0, idx.dtype)]), cx.emit('add', [idx, cx.scalar(depth, idx.dtype)]), idx]);
  const dtype = values.dtype;
  const oh = cx.emit('one_hot', [wrapped], { depth, axis, datatype: dtype });
  if (values.kind === 'static' && values.values?.[0] === 0 && values.values[1] === 1) {
    return [cx.emit('identity', [oh], {}, node.outputs[0])];
  }
  const off = cx.emit('gather', [values, cx.scalar(0, 'INT64')], { axis: 0 });
  const on = cx.emit('gather', [values, cx.scalar(1, 'INT64')], { axis: 0 });
  return [cx.emit('add', [cx.emit('mul', [oh, cx.emit('sub', [on, off])]), off], {}, node.outputs[0])];
};

const trilu: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const kv = cx.get(node.inputs[1]);
  let k = 0;
  if (kv !== undefined) k = cx.knownInts(node, cx.staticInput(node, 1, 'k'), 'k')[0]!;
  return [cx.emit(node.int('upper', 1) === 1 ? 'triu' : 'tril', [x], { k }, node.outputs[0])];
};

const eyeLike: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  if (!known(x.shape) || x.shape.length !== 2) unsupported('its input is not a 2-D value of known shape');
  const [r, c] = x.shape as [number, number];
  const k = node.int('k', 0);
  const dtype = node.has('dtype') ? castTarget(node.int('dtype', 1)) : x.dtype;
  const vals = new Array<number>(r * c).fill(0);
  for (let i = 0; i < r; i++) if (i + k >= 0 && i + k < c) vals[i * c + i + k] = 1;
  return [staticFromValues(dtype, [r, c], vals)];
};

const depthSpace: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const b = node.int('blocksize', 0);
  const [n, c, h, w] = x.shape;
  if (x.shape.length !== 4 || c === null || h === null || w === null || b <= 0) unsupported('it needs a 4-D input of known C, H and W');
  const N = n === null ? -1 : n!;
  if (node.op === 'DepthToSpace') {
    const crd = node.string('mode', 'DCR') === 'CRD';
    const c2 = c! / (b * b);
    const r1 = cx.emit('reshape', [x], { shape: crd ? [N, c2, b, b, h!, w!] : [N, b, b, c2, h!, w!] });
    const t = cx.emit('transpose', [r1], { perm: crd ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2] });
    return [cx.emit('reshape', [t], { shape: [N, c2, h! * b, w! * b] }, node.outputs[0])];
  }
  const r1 = cx.emit('reshape', [x], { shape: [N, c!, h! / b, b, w! / b, b] });
  const t = cx.emit('transpose', [r1], { perm: [0, 3, 5, 1, 2, 4] });
  return [cx.emit('reshape', [t], { shape: [N, c! * b * b, h! / b, w! / b] }, node.outputs[0])];
};

export const SHAPE_OPS: Record<string, Handler> = {
  Shape: shapeOp, Size: sizeOp, Reshape: reshape, Flatten: flatten, Squeeze: squeeze, Unsqueeze: unsqueeze,
  Expand: expand, Concat: concat, Slice: slice, Split: split, Gather: gather, GatherElements: gatherElements,
  ScatterElements: scatterElements, Scatter: scatterElements, Tile: tile, Pad: pad, Transpose: transpose,
  Dropout: dropout, Constant: constant, ConstantOfShape: constantOfShape, Range: range, OneHot: oneHot, Trilu: trilu,
  EyeLike: eyeLike, DepthToSpace: depthSpace, SpaceToDepth: depthSpace,
};

export { tensorFromProto };
