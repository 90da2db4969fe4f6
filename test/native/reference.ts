/**
 * Plain TypeScript reference implementations of the native kernels (float64 arithmetic on number[] in row-major
 * order), plus seeded random shapes/data and comparison helpers. Deliberately naive: one multi-index loop per kernel.
 */
import type { DType, TypedArray } from '../../src/tensor/dtype.js';

export interface Ref {
  data: number[];
  shape: number[];
}

// ---------- seeded randomness (the generator itself is test/support/random.ts) ----------
export const randInt = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
export function randShape(r: () => number, maxRank = 4, maxDim = 5, zeroChance = 0): number[] {
  const rank = randInt(r, 0, maxRank);
  return Array.from({ length: rank }, () => (r() < zeroChance ? 0 : randInt(r, 1, maxDim)));
}
/** Two shapes that broadcast to `out`: leading dims dropped and some dims set to 1. */
export function broadcastPair(r: () => number, out: number[]): [number[], number[]] {
  const derive = (): number[] => {
    const drop = randInt(r, 0, out.length);
    return out.slice(drop).map((d) => (r() < 0.35 ? 1 : d));
  };
  return [derive(), derive()];
}
export function randData(r: () => number, n: number, dtype: DType, lo = -3, hi = 3): number[] {
  return Array.from({ length: n }, () => {
    if (dtype === 'BOOL') return r() < 0.5 ? 1 : 0;
    if (dtype === 'INT32' || dtype === 'INT64') return randInt(r, Math.ceil(lo), Math.floor(hi));
    const v = lo + (hi - lo) * r();
    return dtype === 'FP32' ? Math.fround(v) : v;
  });
}

// ---------- typed arrays ----------
export function toTyped(dtype: DType, data: readonly number[]): TypedArray {
  switch (dtype) {
    case 'FP32': return Float32Array.from(data);
    case 'FP64': return Float64Array.from(data);
    case 'INT32': return Int32Array.from(data);
    case 'INT64': return BigInt64Array.from(data.map((v) => BigInt(v)));
    case 'BOOL': return Uint8Array.from(data);
  }
}
export function fromTyped(a: TypedArray): number[] {
  return a instanceof BigInt64Array ? Array.from(a, (v) => Number(v)) : Array.from(a as ArrayLike<number>);
}
/** The datatype a kernel's output array stands for. */
export { dtypeOfArray as kindOf } from '../../src/tensor/dtype.js';

/** First mismatch as a message, or undefined when every element is close (NaN matches NaN, Inf matches Inf). */
export function mismatch(actual: TypedArray, expected: readonly number[], rtol = 0, atol = 0): string | undefined {
  const got = fromTyped(actual);
  if (got.length !== expected.length) return `length ${got.length} != ${expected.length}`;
  for (let i = 0; i < got.length; i++) {
    const a = got[i] as number;
    const e = expected[i] as number;
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) && Number.isNaN(a)) continue;
      return `[${i}]: got ${a}, expected ${e}`;
    }
    if (a === e) continue;
    if (!Number.isFinite(e) || !Number.isFinite(a) || Math.abs(a - e) > atol + rtol * Math.abs(e)) {
      return `[${i}]: got ${a}, expected ${e}`;
    }
  }
  return undefined;
}
export const tol = (d: DType): [number, number] => (d === 'FP32' ? [2e-5, 1e-6] : d === 'FP64' ? [1e-12, 1e-14] : [0, 0]);

// ---------- index helpers ----------
export const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
export function strides(s: readonly number[]): number[] {
  const st = new Array<number>(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) st[i] = (st[i + 1] as number) * (s[i + 1] as number);
  return st;
}
export function unravel(i: number, s: readonly number[]): number[] {
  const idx = new Array<number>(s.length).fill(0);
  for (let d = s.length - 1; d >= 0; d--) {
    const n = s[d] as number;
    idx[d] = i % n;
    i = Math.floor(i / n);
  }
  return idx;
}
export const ravel = (idx: readonly number[], s: readonly number[]): number => {
  const st = strides(s);
  return idx.reduce((acc, v, d) => acc + v * (st[d] as number), 0);
};
export function broadcastShape(...shapes: number[][]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    s.forEach((d, i) => {
      const j = rank - s.length + i;
      if (d !== 1) out[j] = d;
    });
  }
  return out;
}
/** Reads x (shape s) at an index of the broadcast shape `out`. */
export function bcastAt(x: readonly number[], s: readonly number[], idx: readonly number[]): number {
  const off = idx.length - s.length;
  return x[ravel(s.map((d, i) => (d === 1 ? 0 : (idx[off + i] as number))), s)] as number;
}

// ---------- elementwise ----------
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  if (!Number.isFinite(x)) return Math.sign(x);
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for the tail.
  let f = ax;
  let C = ax;
  let D = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    D = ax + an * D;
    D = 1 / D;
    C = ax + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / (f * Math.sqrt(Math.PI));
  return Math.sign(x) * (1 - erfc);
}

const SQ2PI = Math.sqrt(2 / Math.PI);
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
/** Rounding half to even (C's nearbyint in the default rounding mode); keeps -0. */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}
const relu6Shift3 = (x: number): number => {
  const v = x + 3;
  return v < 0 ? 0 : v > 6 ? 6 : v;
};
/** `param`: the kernel's scalar parameter (alpha of leaky_relu, elu, celu). */
export function unaryRef(op: string, x: number, int: boolean, param = 0): number {
  switch (op) {
    case 'neg': return -x;
    case 'exp': return Math.exp(x);
    case 'log': return Math.log(x);
    case 'log1p': return Math.log1p(x);
    case 'expm1': return Math.expm1(x);
    case 'sqrt': return Math.sqrt(x);
    case 'square': return x * x;
    case 'reciprocal': return 1 / x;
    case 'abs': return Math.abs(x);
    case 'sign': return Number.isNaN(x) ? x : x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'sin': return Math.sin(x);
    case 'cos': return Math.cos(x);
    case 'tanh': return Math.tanh(x);
    case 'sigmoid': return 1 / (1 + Math.exp(-x));
    case 'relu': return Number.isNaN(x) ? x : x > 0 ? x : 0;
    case 'softplus': return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    case 'erf': return erf(x);
    case 'gelu': return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh': return 0.5 * x * (1 + Math.tanh(SQ2PI * (x + 0.044715 * x ** 3)));
    case 'sigmoid_grad': {
      const e = Math.exp(-Math.abs(x));
      return e / (1 + e) ** 2;
    }
    case 'tanh_grad': return 1 - Math.tanh(x) ** 2;
    case 'relu_grad': return x > 0 ? 1 : 0;
    case 'gelu_grad': return 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
    case 'gelu_tanh_grad': {
      const t = Math.tanh(SQ2PI * (x + 0.044715 * x ** 3));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQ2PI * (1 + 3 * 0.044715 * x * x);
    }
    case 'erf_grad': return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x);
    case 'tan': return Math.tan(x);
    case 'asin': return Math.asin(x);
    case 'acos': return Math.acos(x);
    case 'atan': return Math.atan(x);
    case 'sinh': return Math.sinh(x);
    case 'cosh': return Math.cosh(x);
    case 'asinh': return Math.asinh(x);
    case 'acosh': return Math.acosh(x);
    case 'atanh': return Math.atanh(x);
    case 'log2': return Math.log2(x);
    case 'log10': return Math.log10(x);
    case 'exp2': return 2 ** x;
    case 'rsqrt': return 1 / Math.sqrt(x);
    case 'floor': return Math.floor(x);
    case 'ceil': return Math.ceil(x);
    case 'round': return roundHalfEven(x);
    case 'trunc': return Math.trunc(x);
    case 'silu': return x === -Infinity ? -0 : x / (1 + Math.exp(-x));
    case 'mish': return x === -Infinity ? -0 : x * Math.tanh(Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))));
    case 'selu': return x > 0 ? SELU_SCALE * x : SELU_SCALE * SELU_ALPHA * Math.expm1(x);
    case 'hardsigmoid': return relu6Shift3(x) / 6;
    case 'hardswish': return (x * relu6Shift3(x)) / 6;
    case 'softsign': return Math.abs(x) === Infinity ? Math.sign(x) : x / (1 + Math.abs(x));
    case 'leaky_relu': return x > 0 ? x : x * param;
    case 'elu': return x > 0 ? x : param * Math.expm1(x);
    case 'celu': return x > 0 ? x : param * Math.expm1(x / param);
  }
  void int;
  throw new Error(`no reference for ${op}`);
}

const truncDiv = (a: number, b: number): number => (b === 0 ? 0 : Math.trunc(a / b));
function intPow(a: number, b: number): number {
  if (b < 0) return a === 1 ? 1 : a === -1 ? (b % 2 === 0 ? 1 : -1) : 0;
  return a ** b;
}
/** C/NumPy pow, which differs from JS `**` at pow(1, NaN) and pow(-1, +-Inf) (both 1). */
const cPow = (a: number, b: number): number => (a === 1 || b === 0 ? 1 : a === -1 && Math.abs(b) === Infinity ? 1 : a ** b);
/** Integer mod (floor: the divisor's sign) or fmod (trunc); x mod 0 = 0 as NumPy. */
function intMod(a: number, b: number, floor: boolean): number {
  if (b === 0 || b === -1) return 0;
  const r = a % b;
  return floor && r !== 0 && r < 0 !== b < 0 ? r + b : r + 0;
}
/** NumPy's float mod: fmod, moved to the divisor's sign; a zero result takes the divisor's sign. */
function floatMod(a: number, b: number): number {
  const r = a % b;
  if (r === 0) return b < 0 || Object.is(b, -0) ? -0 : 0;
  return r < 0 !== b < 0 ? r + b : r;
}
const nanMax = (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
const nanMin = (a: number, b: number): number => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b));
export function binaryRef(op: string, a: number, b: number, int: boolean): number {
  switch (op) {
    case 'add': return a + b;
    case 'sub': return a - b;
    case 'mul': return a * b;
    case 'div': return int ? truncDiv(a, b) : a / b;
    case 'pow': return int ? intPow(a, b) : cPow(a, b);
    case 'maximum': return int ? Math.max(a, b) : nanMax(a, b);
    case 'minimum': return int ? Math.min(a, b) : nanMin(a, b);
    case 'equal': return a === b ? 1 : 0;
    case 'not_equal': return a !== b ? 1 : 0;
    case 'less': return a < b ? 1 : 0;
    case 'less_equal': return a <= b ? 1 : 0;
    case 'greater': return a > b ? 1 : 0;
    case 'greater_equal': return a >= b ? 1 : 0;
    case 'mul_no_nan': return a === 0 ? 0 : a * b;
    case 'atan2': return Math.atan2(a, b);
    case 'mod': return int ? intMod(a, b, true) : floatMod(a, b);
    case 'fmod': return int ? intMod(a, b, false) : a % b; // JS % is C's fmod
    case 'logaddexp': return a === b ? a + Math.LN2 : Math.max(a, b) + Math.log1p(Math.exp(-Math.abs(a - b)));
    case 'hypot': return Math.hypot(a, b);
    case 'logical_and': return a !== 0 && b !== 0 ? 1 : 0;
    case 'logical_or': return a !== 0 || b !== 0 ? 1 : 0;
    case 'logical_xor': return (a !== 0) !== (b !== 0) ? 1 : 0;
  }
  throw new Error(`no reference for ${op}`);
}

export function broadcastRef(xs: Ref[], f: (...v: number[]) => number): Ref {
  const shape = broadcastShape(...xs.map((x) => x.shape));
  const data = Array.from({ length: numel(shape) }, (_, i) => {
    const idx = unravel(i, shape);
    return f(...xs.map((x) => bcastAt(x.data, x.shape, idx)));
  });
  return { data, shape };
}
