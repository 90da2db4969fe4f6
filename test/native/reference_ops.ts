/** Reference reductions, matmul and data movement (see reference.ts). */
import { numel, ravel, strides, unravel, type Ref } from './reference.js';

export function reduceRef(op: string, x: Ref, axes: number[]): Ref {
  const outShape = x.shape.filter((_, d) => !axes.includes(d));
  const groups: number[][] = Array.from({ length: numel(outShape) }, () => []);
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape).filter((_, d) => !axes.includes(d));
    (groups[ravel(idx, outShape)] as number[]).push(x.data[i] as number);
  }
  const data = groups.map((g) => {
    switch (op) {
      case 'sum': return g.reduce((a, b) => a + b, 0);
      case 'mean': return g.reduce((a, b) => a + b, 0) / g.length;
      case 'prod': return g.reduce((a, b) => a * b, 1);
      case 'max': return g.some(Number.isNaN) ? NaN : Math.max(...g);
      case 'min': return g.some(Number.isNaN) ? NaN : Math.min(...g);
      case 'logsumexp': {
        if (g.some(Number.isNaN)) return NaN;
        const m = Math.max(-Infinity, ...g);
        if (!Number.isFinite(m)) return m;
        return m + Math.log(g.reduce((a, v) => a + Math.exp(v - m), 0));
      }
    }
    throw new Error(op);
  });
  return { data, shape: outShape };
}

export function argReduceRef(op: 'argmax' | 'argmin', x: Ref, axis: number | null): Ref {
  const shape = axis === null ? [x.data.length] : x.shape;
  const ax = axis ?? 0;
  const outShape = axis === null ? [] : shape.filter((_, d) => d !== ax);
  const best: { v: number; i: number }[] = Array.from({ length: numel(outShape) }, () => ({ v: NaN, i: -1 }));
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, shape);
    const a = idx[ax] as number;
    const o = ravel(idx.filter((_, d) => d !== ax), outShape);
    const b = best[o] as { v: number; i: number };
    const v = x.data[i] as number;
    if (b.i === -1) { b.v = v; b.i = a; continue; }
    if (Number.isNaN(b.v)) continue;
    if (Number.isNaN(v) || (op === 'argmax' ? v > b.v : v < b.v)) { b.v = v; b.i = a; }
  }
  return { data: best.map((b) => b.i), shape: outShape };
}

export function softmaxRef(x: Ref, axis: number, log: boolean): Ref {
  const data = new Array<number>(x.data.length).fill(0);
  const st = strides(x.shape)[axis] as number;
  const n = x.shape[axis] as number;
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape);
    if (idx[axis] !== 0) continue;
    const row = Array.from({ length: n }, (_, k) => x.data[i + k * st] as number);
    const m = Math.max(...row);
    const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
    row.forEach((v, k) => { data[i + k * st] = log ? v - m - Math.log(s) : Math.exp(v - m) / s; });
  }
  return { data, shape: x.shape };
}

export function matmulRef(a: Ref, b: Ref, ta: boolean, tb: boolean): Ref {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = (ta ? a.shape[ra - 1] : a.shape[ra - 2]) as number;
  const k = (ta ? a.shape[ra - 2] : a.shape[ra - 1]) as number;
  const n = (tb ? b.shape[rb - 2] : b.shape[rb - 1]) as number;
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const batch = new Array<number>(rank).fill(1);
  for (const s of [ba, bb]) s.forEach((d, i) => { if (d !== 1) batch[rank - s.length + i] = d; });
  const out = [...batch, m, n];
  const data = new Array<number>(numel(out)).fill(0);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, out);
    const bi = idx.slice(0, rank);
    const r = idx[rank] as number;
    const c = idx[rank + 1] as number;
    const pick = (s: number[]) => s.map((d, j) => (d === 1 ? 0 : (bi[rank - s.length + j] as number)));
    const ia = pick(ba);
    const ib = pick(bb);
    let acc = 0;
    for (let p = 0; p < k; p++) {
      const av = a.data[ravel([...ia, ...(ta ? [p, r] : [r, p])], a.shape)] as number;
      const bv = b.data[ravel([...ib, ...(tb ? [c, p] : [p, c])], b.shape)] as number;
      acc += av * bv;
    }
    data[i] = acc;
  }
  return { data, shape: out };
}

export function transposeRef(x: Ref, perm: number[]): Ref {
  const shape = perm.map((p) => x.shape[p] as number);
  const data = Array.from({ length: x.data.length }, (_, i) => {
    const oi = unravel(i, shape);
    const ii = new Array<number>(perm.length);
    perm.forEach((p, d) => { ii[p] = oi[d] as number; });
    return x.data[ravel(ii, x.shape)] as number;
  });
  return { data, shape };
}

export function sliceRef(x: Ref, starts: number[], steps: number[], outShape: number[]): Ref {
  const data = Array.from({ length: numel(outShape) }, (_, i) => {
    const oi = unravel(i, outShape);
    return x.data[ravel(oi.map((v, d) => (starts[d] as number) + v * (steps[d] as number)), x.shape)] as number;
  });
  return { data, shape: outShape };
}

export function sliceBackwardRef(g: Ref, starts: number[], steps: number[], shape: number[]): Ref {
  const data = new Array<number>(numel(shape)).fill(0);
  g.data.forEach((v, i) => {
    const oi = unravel(i, g.shape);
    data[ravel(oi.map((q, d) => (starts[d] as number) + q * (steps[d] as number)), shape)] += v;
  });
  return { data, shape };
}

export function padRef(x: Ref, pads: [number, number][], value: number): Ref {
  const shape = x.shape.map((d, k) => d + (pads[k] as [number, number])[0] + (pads[k] as [number, number])[1]);
  const data = new Array<number>(numel(shape)).fill(value);
  x.data.forEach((v, i) => {
    const idx = unravel(i, x.shape).map((q, k) => q + (pads[k] as [number, number])[0]);
    data[ravel(idx, shape)] = v;
  });
  return { data, shape };
}

export function concatRef(xs: Ref[], axis: number): Ref {
  const shape = [...(xs[0] as Ref).shape];
  shape[axis] = xs.reduce((a, x) => a + (x.shape[axis] as number), 0);
  const data = new Array<number>(numel(shape)).fill(0);
  let off = 0;
  for (const x of xs) {
    x.data.forEach((v, i) => {
      const idx = unravel(i, x.shape);
      idx[axis] = (idx[axis] as number) + off;
      data[ravel(idx, shape)] = v;
    });
    off += x.shape[axis] as number;
  }
  return { data, shape };
}

export function gatherRef(x: Ref, ind: Ref, axis: number): Ref {
  const n = x.shape[axis] as number;
  const shape = [...x.shape.slice(0, axis), ...ind.shape, ...x.shape.slice(axis + 1)];
  const r = ind.shape.length;
  const data = Array.from({ length: numel(shape) }, (_, i) => {
    const oi = unravel(i, shape);
    let k = ind.data[ravel(oi.slice(axis, axis + r), ind.shape)] as number;
    if (k < 0) k += n;
    return x.data[ravel([...oi.slice(0, axis), k, ...oi.slice(axis + r)], x.shape)] as number;
  });
  return { data, shape };
}

export function scatterAddRef(g: Ref, ind: Ref, axis: number, shape: number[]): Ref {
  const n = shape[axis] as number;
  const r = ind.shape.length;
  const data = new Array<number>(numel(shape)).fill(0);
  g.data.forEach((v, i) => {
    const oi = unravel(i, g.shape);
    let k = ind.data[ravel(oi.slice(axis, axis + r), ind.shape)] as number;
    if (k < 0) k += n;
    data[ravel([...oi.slice(0, axis), k, ...oi.slice(axis + r)], shape)] += v;
  });
  return { data, shape };
}

export function oneHotRef(ind: Ref, depth: number, axis: number): Ref {
  const shape = [...ind.shape.slice(0, axis), depth, ...ind.shape.slice(axis)];
  const data = Array.from({ length: numel(shape) }, (_, i) => {
    const oi = unravel(i, shape);
    const k = oi[axis] as number;
    const v = ind.data[ravel([...oi.slice(0, axis), ...oi.slice(axis + 1)], ind.shape)] as number;
    return v === k ? 1 : 0;
  });
  return { data, shape };
}
