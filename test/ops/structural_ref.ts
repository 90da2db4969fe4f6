/**
 * NumPy-semantics references for the structural ops, written per op from the NumPy documentation (index loops over
 * plain number arrays), independent of the native kernels.
 */
export interface Arr { shape: number[]; data: number[] }

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

export function idxOf(flat: number, shape: readonly number[]): number[] {
  const out: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    out.unshift(flat % shape[k]!);
    flat = Math.floor(flat / shape[k]!);
  }
  return out;
}

export function flatOf(idx: readonly number[], shape: readonly number[]): number {
  return idx.reduce((p, v, k) => p * shape[k]! + v, 0);
}

export function build(shape: number[], f: (idx: number[]) => number): Arr {
  return { shape, data: Array.from({ length: numel(shape) }, (_, i) => f(idxOf(i, shape))) };
}

export function reduceRef(x: Arr, axes: number[] | null, keepdims: boolean, f: (vals: number[]) => number): Arr {
  const r = x.shape.length;
  const ax = (axes ?? x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + r : a));
  const outShape = x.shape.flatMap((d, i) => (ax.includes(i) ? (keepdims ? [1] : []) : [d]));
  const keptShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const groups = new Map<number, number[]>();
  x.data.forEach((v, i) => {
    const key = flatOf(idxOf(i, x.shape).map((c, k) => (ax.includes(k) ? 0 : c)), keptShape);
    groups.set(key, [...(groups.get(key) ?? []), v]);
  });
  return { shape: outShape, data: Array.from({ length: numel(keptShape) }, (_, k) => f(groups.get(k) ?? [])) };
}

export const REDUCERS: Record<string, (v: number[]) => number> = {
  sum: (v) => v.reduce((a, b) => a + b, 0),
  mean: (v) => v.reduce((a, b) => a + b, 0) / v.length,
  max: (v) => Math.max(...v),
  min: (v) => Math.min(...v),
  prod: (v) => v.reduce((a, b) => a * b, 1),
  logsumexp: (v) => Math.log(v.reduce((a, b) => a + Math.exp(b), 0)),
};

/** np.matmul by its definition: promote 1-D, broadcast batch dims, squeeze back. */
export function matmulRef(a: Arr, b: Arr): Arr {
  const A = a.shape.length === 1 ? { shape: [1, a.shape[0]!], data: a.data } : a;
  const B = b.shape.length === 1 ? { shape: [b.shape[0]!, 1], data: b.data } : b;
  const ba = A.shape.slice(0, -2), bb = B.shape.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const pa = [...new Array(rank - ba.length).fill(1), ...ba], pb = [...new Array(rank - bb.length).fill(1), ...bb];
  const batch = pa.map((d, i) => Math.max(d, pb[i]!));
  const [m, k] = A.shape.slice(-2) as [number, number];
  const n = B.shape[B.shape.length - 1]!;
  const out = build([...batch, m, n], (idx) => {
    const bi = idx.slice(0, rank), i = idx[rank]!, j = idx[rank + 1]!;
    let s = 0;
    for (let p = 0; p < k; p++) {
      const ia = [...bi.map((v, t) => (pa[t] === 1 ? 0 : v)).slice(rank - ba.length), i, p];
      const ib = [...bi.map((v, t) => (pb[t] === 1 ? 0 : v)).slice(rank - bb.length), p, j];
      s += A.data[flatOf(ia, A.shape)]! * B.data[flatOf(ib, B.shape)]!;
    }
    return s;
  });
  const shape = [...out.shape];
  if (b.shape.length === 1) shape.splice(-1, 1);
  if (a.shape.length === 1) shape.splice(shape.length - (b.shape.length === 1 ? 1 : 2), 1);
  return { shape, data: out.data };
}

/** Python's slice semantics by enumeration: the positions range(*slice(s, e, st).indices(n)) visits. */
export function slicePositions(s: number, e: number, st: number, n: number): number[] {
  let start: number, stop: number;
  if (st > 0) {
    start = s < 0 ? Math.max(0, s + n) : Math.min(s, n);
    stop = e < 0 ? Math.max(0, e + n) : Math.min(e, n);
  } else {
    start = s < 0 ? Math.max(-1, s + n) : Math.min(s, n - 1);
    stop = e < 0 ? Math.max(-1, e + n) : Math.min(e, n - 1);
  }
  const out: number[] = [];
  for (let i = start; st > 0 ? i < stop : i > stop; i += st) out.push(i);
  return out;
}

export function sliceRef(x: Arr, starts: number[], ends: number[], axes: number[], steps: number[]): Arr {
  const pos = x.shape.map((n, k) => {
    const j = axes.findIndex((a) => (a < 0 ? a + x.shape.length : a) === k);
    return j < 0 ? Array.from({ length: n }, (_, i) => i) : slicePositions(starts[j]!, ends[j]!, steps[j]!, n);
  });
  return build(pos.map((p) => p.length), (idx) => x.data[flatOf(idx.map((v, k) => pos[k]![v]!), x.shape)]!);
}

export function transposeRef(x: Arr, perm: number[]): Arr {
  return build(perm.map((p) => x.shape[p]!), (idx) => {
    const src = new Array<number>(perm.length);
    perm.forEach((p, k) => { src[p] = idx[k]!; });
    return x.data[flatOf(src, x.shape)]!;
  });
}

export function takeRef(x: Arr, ind: Arr, axis: number): Arr {
  const n = x.shape[axis]!, r = ind.shape.length;
  const shape = [...x.shape.slice(0, axis), ...ind.shape, ...x.shape.slice(axis + 1)];
  return build(shape, (idx) => {
    let t = ind.data[flatOf(idx.slice(axis, axis + r), ind.shape)]!;
    if (t < 0) t += n;
    return x.data[flatOf([...idx.slice(0, axis), t, ...idx.slice(axis + r)], x.shape)]!;
  });
}

export function padRef(x: Arr, pads: [number, number][], value: number): Arr {
  return build(x.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]), (idx) => {
    const src = idx.map((v, k) => v - pads[k]![0]);
    return src.every((v, k) => v >= 0 && v < x.shape[k]!) ? x.data[flatOf(src, x.shape)]! : value;
  });
}

export function concatRef(xs: Arr[], axis: number): Arr {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((p, x) => p + x.shape[axis]!, 0);
  return build(shape, (idx) => {
    let part = 0, pos = idx[axis]!;
    while (pos >= xs[part]!.shape[axis]!) pos -= xs[part++]!.shape[axis]!;
    const src = [...idx];
    src[axis] = pos;
    return xs[part]!.data[flatOf(src, xs[part]!.shape)]!;
  });
}

export function softmaxRef(x: Arr, axis: number, log: boolean): Arr {
  const lse = reduceRef(x, [axis], true, (v) => {
    const m = Math.max(...v);
    return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0));
  });
  return build(x.shape, (idx) => {
    const l = lse.data[flatOf(idx.map((v, k) => (k === axis ? 0 : v)), lse.shape)]!;
    const y = x.data[flatOf(idx, x.shape)]! - l;
    return log ? y : Math.exp(y);
  });
}
