/**
 * A plain TypeScript implementation of the kernel contract (src/kernels.types.ts), written for clarity rather than
 * speed. The structural op tests use it as their reference: an op's value through the native kernels must match the
 * same op through these loops, and where the addon is not built yet the engine runs on these (setKernels), so the
 * derivative rules can still be checked against finite differences.
 */
import type {
  ArgReduceOp, BinaryOp, FloatArray, IndexArray, KernelFns, Kernels, ReduceOp, Shaped, UnaryOp,
} from '../../src/kernels.types.js';
import { allocArray, dtypeOfArray, type DType, type TypedArray } from '../../src/tensor/dtype.js';

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function strides(s: readonly number[]): number[] {
  const st = new Array<number>(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) st[i] = st[i + 1]! * s[i + 1]!;
  return st;
}

/** Multi-index of flat position i in shape s. */
function unravel(i: number, s: readonly number[]): number[] {
  const idx = new Array<number>(s.length);
  for (let k = s.length - 1; k >= 0; k--) {
    idx[k] = i % s[k]!;
    i = Math.floor(i / s[k]!);
  }
  return idx;
}

/** Flat position in `s` of multi-index `idx` aligned to the right, with size-1 dims broadcast. */
function bcastOffset(idx: readonly number[], s: readonly number[]): number {
  const off = idx.length - s.length;
  const st = strides(s);
  let p = 0;
  for (let k = 0; k < s.length; k++) p += (s[k] === 1 ? 0 : idx[off + k]!) * st[k]!;
  return p;
}

function bshape(...ss: (readonly number[])[]): number[] {
  const r = Math.max(...ss.map((s) => s.length));
  const out = new Array<number>(r).fill(1);
  for (const s of ss) {
    s.forEach((d, i) => {
      const j = r - s.length + i;
      if (d !== 1) {
        if (out[j] !== 1 && out[j] !== d) throw Object.assign(new Error('shapes do not broadcast'), { code: 'INVALID_ARGUMENT' });
        out[j] = d;
      }
    });
  }
  return out;
}

const get = (a: TypedArray, i: number): number => Number(a[i]!);

function put(a: TypedArray, i: number, v: number): void {
  if (a instanceof BigInt64Array) a[i] = BigInt(Math.trunc(v));
  else a[i] = v;
}

function fromNumbers(dtype: DType, vals: readonly number[]): TypedArray {
  const a = allocArray(dtype, vals.length);
  vals.forEach((v, i) => put(a, i, v));
  return a;
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse for gradchecks; use the series / continued fraction split
  if (Math.abs(x) > 5) return Math.sign(x);
  let sum = 0, term = x;
  for (let n = 0; n < 400; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
    if (Math.abs(term) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x, exp: Math.exp, log: Math.log, log1p: Math.log1p, expm1: Math.expm1, sqrt: Math.sqrt,
  square: (x) => x * x, reciprocal: (x) => 1 / x, abs: Math.abs, sign: (x) => (Number.isNaN(x) ? NaN : Math.sign(x)),
  sin: Math.sin, cos: Math.cos, tanh: Math.tanh, sigmoid: sig, relu: (x) => (x > 0 ? x : 0),
  softplus: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))), erf,
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  sigmoid_grad: (x) => sig(x) * (1 - sig(x)), tanh_grad: (x) => 1 - Math.tanh(x) ** 2, relu_grad: (x) => (x > 0 ? 1 : 0),
  gelu_grad: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-x * x / 2)) / Math.sqrt(2 * Math.PI),
  gelu_tanh_grad: (x) => {
    const c = Math.sqrt(2 / Math.PI), u = c * (x + 0.044715 * x ** 3), t = Math.tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x);
  },
  erf_grad: (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x),
};

const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b, pow: (a, b) => a ** b,
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  equal: (a, b) => +(a === b), not_equal: (a, b) => +(a !== b), less: (a, b) => +(a < b), less_equal: (a, b) => +(a <= b),
  greater: (a, b) => +(a > b), greater_equal: (a, b) => +(a >= b), mul_no_nan: (a, b) => (a === 0 ? 0 : a * b),
};
const COMPARE = new Set(['equal', 'not_equal', 'less', 'less_equal', 'greater', 'greater_equal']);

function reduceSlices(shape: readonly number[], axes: readonly number[], visit: (outIndex: number, inIndex: number) => void): number[] {
  const outShape = shape.filter((_, i) => !axes.includes(i));
  const n = numel(shape);
  const ost = strides(outShape);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, shape);
    let o = 0, j = 0;
    idx.forEach((v, k) => { if (!axes.includes(k)) o += v * ost[j++]!; });
    visit(o, i);
  }
  return outShape;
}

export const refKernelFns: KernelFns = {
  unary(op, x) {
    const f = UNARY[op];
    return fromNumbers(dtypeOfArray(x), Array.from({ length: x.length }, (_, i) => f(get(x, i))));
  },
  binary(op, a, as, b, bs) {
    const shape = bshape(as, bs);
    const f = BINARY[op];
    const dtype = COMPARE.has(op) ? 'BOOL' : dtypeOfArray(a);
    const vals = Array.from({ length: numel(shape) }, (_, i) => {
      const idx = unravel(i, shape);
      return f(get(a, bcastOffset(idx, as)), get(b, bcastOffset(idx, bs)));
    });
    return { shape, data: fromNumbers(dtype, vals) };
  },
  where(c, cs, a, as, b, bs) {
    const shape = bshape(cs, as, bs);
    const vals = Array.from({ length: numel(shape) }, (_, i) => {
      const idx = unravel(i, shape);
      return c[bcastOffset(idx, cs)] ? get(a, bcastOffset(idx, as)) : get(b, bcastOffset(idx, bs));
    });
    return { shape, data: fromNumbers(dtypeOfArray(a), vals) };
  },
  clip(x, min, max) {
    return fromNumbers(dtypeOfArray(x), Array.from({ length: x.length }, (_, i) => {
      let v = get(x, i);
      if (min !== null && v < min) v = min;
      if (max !== null && v > max) v = max;
      return v;
    }));
  },
  reduce(op: ReduceOp, x, shape, axes) {
    const slices: number[][] = [];
    const outShape = reduceSlices(shape, axes, (o, i) => { (slices[o] ??= []).push(get(x, i)); });
    const n = numel(outShape);
    const vals = Array.from({ length: n }, (_, o) => {
      const s = slices[o] ?? [];
      switch (op) {
        case 'sum': return s.reduce((p, v) => p + v, 0);
        case 'mean': return s.reduce((p, v) => p + v, 0) / s.length;
        case 'prod': return s.reduce((p, v) => p * v, 1);
        case 'max': return s.some(Number.isNaN) ? NaN : Math.max(...s);
        case 'min': return s.some(Number.isNaN) ? NaN : Math.min(...s);
        case 'logsumexp': {
          const m = Math.max(...s);
          if (m === -Infinity) return -Infinity;
          return m + Math.log(s.reduce((p, v) => p + Math.exp(v - m), 0));
        }
      }
    });
    return fromNumbers(dtypeOfArray(x), vals);
  },
  argReduce(op: ArgReduceOp, x, shape, axis) {
    const better = (v: number, b: number) => (Number.isNaN(v) && !Number.isNaN(b)) || (op === 'argmax' ? v > b : v < b);
    if (axis === null) {
      let best = 0;
      for (let i = 1; i < x.length; i++) if (better(get(x, i), get(x, best))) best = i;
      return BigInt64Array.of(BigInt(best));
    }
    const bestVal: number[] = [], bestIdx: number[] = [];
    reduceSlices(shape, [axis], (o, i) => {
      const v = get(x, i);
      const pos = unravel(i, shape)[axis]!;
      if (bestIdx[o] === undefined || better(v, bestVal[o]!)) { bestVal[o] = v; bestIdx[o] = pos; }
    });
    return BigInt64Array.from(bestIdx.map(BigInt));
  },
  softmax(x, shape, axis, log) {
    const l = refKernelFns.reduce('logsumexp', x, shape, [axis]) as FloatArray;
    const keep = shape.map((d, i) => (i === axis ? 1 : d));
    const out = allocArray(dtypeOfArray(x), x.length) as FloatArray;
    for (let i = 0; i < x.length; i++) {
      const o = bcastOffset(unravel(i, shape), keep);
      const v = x[i]! - l[o]!;
      out[i] = log ? v : Math.exp(v);
    }
    return out;
  },
  matmul(a, as, b, bs, ta, tb) {
    const ra = as.length, rb = bs.length;
    const m = ta ? as[ra - 1]! : as[ra - 2]!, k = ta ? as[ra - 2]! : as[ra - 1]!;
    const n = tb ? bs[rb - 2]! : bs[rb - 1]!;
    const batch = bshape(as.slice(0, -2), bs.slice(0, -2));
    const shape = [...batch, m, n];
    const vals: number[] = [];
    for (let bi = 0; bi < numel(batch); bi++) {
      const bidx = unravel(bi, batch);
      const oa = bcastOffset(bidx, as.slice(0, -2)) * as[ra - 2]! * as[ra - 1]!;
      const ob = bcastOffset(bidx, bs.slice(0, -2)) * bs[rb - 2]! * bs[rb - 1]!;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) {
            const av = get(a, oa + (ta ? p * m + i : i * k + p));
            const bv = get(b, ob + (tb ? j * k + p : p * n + j));
            s += av * bv;
          }
          vals.push(s);
        }
      }
    }
    return { shape, data: fromNumbers(dtypeOfArray(a), vals) };
  },
  transpose(x, shape, perm) {
    const out = perm.map((p) => shape[p]!);
    const st = strides(shape);
    const res = allocArray(dtypeOfArray(x), x.length);
    for (let i = 0; i < x.length; i++) {
      const idx = unravel(i, out);
      let src = 0;
      idx.forEach((v, k) => { src += v * st[perm[k]!]!; });
      res[i] = x[src]!;
    }
    return res;
  },
  broadcastTo(x, shape, outShape) {
    const res = allocArray(dtypeOfArray(x), numel(outShape));
    for (let i = 0; i < res.length; i++) res[i] = x[bcastOffset(unravel(i, outShape), shape)]!;
    return res;
  },
  slice(x, shape, starts, steps, outShape) {
    const st = strides(shape);
    const res = allocArray(dtypeOfArray(x), numel(outShape));
    for (let i = 0; i < res.length; i++) {
      const idx = unravel(i, outShape);
      let src = 0;
      idx.forEach((v, k) => { src += (starts[k]! + v * steps[k]!) * st[k]!; });
      res[i] = x[src]!;
    }
    return res;
  },
  sliceBackward(g, outShape, starts, steps, shape) {
    const st = strides(shape);
    const res = allocArray(dtypeOfArray(g), numel(shape));
    for (let i = 0; i < g.length; i++) {
      const idx = unravel(i, outShape);
      let dst = 0;
      idx.forEach((v, k) => { dst += (starts[k]! + v * steps[k]!) * st[k]!; });
      put(res, dst, get(res, dst) + get(g, i));
    }
    return res;
  },
  pad(x, shape, pads, value) {
    const out = shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
    const st = strides(shape);
    const res = allocArray(dtypeOfArray(x), numel(out));
    for (let i = 0; i < res.length; i++) {
      const idx = unravel(i, out);
      let src = 0, inside = true;
      idx.forEach((v, k) => {
        const p = v - pads[k]![0];
        if (p < 0 || p >= shape[k]!) inside = false;
        src += p * st[k]!;
      });
      if (inside) res[i] = x[src]!;
      else put(res, i, value);
    }
    return res;
  },
  concat(xs, shapes, axis) {
    const out = [...shapes[0]!];
    out[axis] = shapes.reduce((p, s) => p + s[axis]!, 0);
    const res = allocArray(dtypeOfArray(xs[0]!), numel(out));
    for (let i = 0; i < res.length; i++) {
      const idx = unravel(i, out);
      let part = 0, pos = idx[axis]!;
      while (pos >= shapes[part]![axis]!) pos -= shapes[part++]![axis]!;
      idx[axis] = pos;
      const st = strides(shapes[part]!);
      res[i] = xs[part]![idx.reduce((p, v, k) => p + v * st[k]!, 0)]!;
    }
    return res;
  },
  gather(x, shape, indices, indicesShape, axis) {
    const n = shape[axis]!;
    const out = [...shape.slice(0, axis), ...indicesShape, ...shape.slice(axis + 1)];
    const st = strides(shape);
    const res = allocArray(dtypeOfArray(x), numel(out));
    const r = indicesShape.length;
    for (let i = 0; i < res.length; i++) {
      const idx = unravel(i, out);
      const ii = idx.slice(axis, axis + r);
      let t = Number(indices[ii.reduce((p, v, k) => p * indicesShape[k]! + v, 0)]!);
      if (t < -n || t >= n) throw Object.assign(new Error(`index ${t} out of range`), { code: 'INDEX_OUT_OF_RANGE' });
      if (t < 0) t += n;
      const src = [...idx.slice(0, axis), t, ...idx.slice(axis + r)];
      res[i] = x[src.reduce((p, v, k) => p + v * st[k]!, 0)]!;
    }
    return res;
  },
  scatterAdd(g, indices, indicesShape, axis, shape) {
    const n = shape[axis]!;
    const gShape = [...shape.slice(0, axis), ...indicesShape, ...shape.slice(axis + 1)];
    const st = strides(shape);
    const res = allocArray(dtypeOfArray(g), numel(shape)) as FloatArray;
    const r = indicesShape.length;
    for (let i = 0; i < g.length; i++) {
      const idx = unravel(i, gShape);
      let t = Number(indices[idx.slice(axis, axis + r).reduce((p, v, k) => p * indicesShape[k]! + v, 0)]!);
      if (t < -n || t >= n) throw Object.assign(new Error(`index ${t} out of range`), { code: 'INDEX_OUT_OF_RANGE' });
      if (t < 0) t += n;
      const dst = [...idx.slice(0, axis), t, ...idx.slice(axis + r)].reduce((p, v, k) => p + v * st[k]!, 0);
      res[dst] = res[dst]! + g[i]!;
    }
    return res;
  },
  oneHot(indices: IndexArray, indicesShape, depth, axis, dtype) {
    const out = [...indicesShape];
    out.splice(axis, 0, depth);
    const res = allocArray(dtype, numel(out));
    for (let i = 0; i < res.length; i++) {
      const idx = unravel(i, out);
      const c = idx.splice(axis, 1)[0]!;
      const label = Number(indices[idx.reduce((p, v, k) => p * indicesShape[k]! + v, 0)]!);
      put(res, i, label === c ? 1 : 0);
    }
    return res;
  },
  cast(x, to) {
    return fromNumbers(to, Array.from({ length: x.length }, (_, i) => {
      const v = get(x, i);
      return to === 'FP32' || to === 'FP64' ? v : to === 'BOOL' ? +(v !== 0) : Math.trunc(v);
    }));
  },
};

export const refKernels: Kernels = {
  ...refKernelFns,
  info: () => ({ blas: 'typescript reference', cblas: false, simd: 'none', threads: 1, version: 'ref' }),
  async: Object.fromEntries(Object.entries(refKernelFns).map(([k, f]) => [k, async (...a: unknown[]) => (f as (...x: unknown[]) => unknown)(...a)])) as Kernels['async'],
};

export type { Shaped };
