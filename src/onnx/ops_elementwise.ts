/**
 * Elementwise ONNX ops: unary functions and activations, broadcasting binary arithmetic, comparisons and logic, the
 * variadic Sum/Mean/Max/Min, Where, Clip, Cast, Pow. Static operands (shape arithmetic) are folded in JS; everything
 * else becomes gradserve nodes. ONNX and gradserve both broadcast multidirectionally, so shapes carry over.
 */
import type { DType } from '../tensor/dtype.js';
import { EXACT, typeName } from './tensors.js';
import { type ImportContext, type OnnxNode, type StaticVal, type Val, FOLD_LIMIT, staticFromValues, unsupported } from './context.js';
import type { Handler } from './handlers.js';

/** ONNX op -> gradserve op of one operand, same semantics. */
const UNARY: Record<string, string> = {
  Abs: 'abs', Neg: 'neg', Exp: 'exp', Log: 'log', Sqrt: 'sqrt', Reciprocal: 'reciprocal', Sin: 'sin', Cos: 'cos',
  Tan: 'tan', Asin: 'asin', Acos: 'acos', Atan: 'atan', Sinh: 'sinh', Cosh: 'cosh', Asinh: 'asinh', Acosh: 'acosh',
  Atanh: 'atanh', Tanh: 'tanh', Sigmoid: 'sigmoid', Relu: 'relu', Erf: 'erf', Floor: 'floor', Ceil: 'ceil',
  Round: 'round', Sign: 'sign', Softplus: 'softplus', Softsign: 'softsign', Not: 'logical_not', Mish: 'mish',
  HardSwish: 'hardswish', IsNaN: 'isnan', Identity: 'identity',
};

/** ONNX op -> gradserve op of two broadcasting operands. */
const BINARY: Record<string, string> = {
  Add: 'add', Sub: 'sub', Mul: 'mul', Div: 'div', Equal: 'equal', Less: 'less', Greater: 'greater',
  LessOrEqual: 'less_equal', GreaterOrEqual: 'greater_equal', And: 'logical_and', Or: 'logical_or', Xor: 'logical_xor',
};

type Fn1 = (a: number) => number;
type Fn2 = (a: number, b: number) => number;

const FOLD1: Record<string, Fn1> = {
  Neg: (a) => -a, Abs: Math.abs, Identity: (a) => a, Not: (a) => (a ? 0 : 1), Sign: Math.sign, Floor: Math.floor,
  Ceil: Math.ceil, Sqrt: Math.sqrt, Exp: Math.exp, Log: Math.log, Reciprocal: (a) => 1 / a, Relu: (a) => Math.max(a, 0),
};

const FOLD2: Record<string, Fn2> = {
  Add: (a, b) => a + b, Sub: (a, b) => a - b, Mul: (a, b) => a * b, Div: (a, b) => a / b,
  Equal: (a, b) => +(a === b), Less: (a, b) => +(a < b), Greater: (a, b) => +(a > b), LessOrEqual: (a, b) => +(a <= b),
  GreaterOrEqual: (a, b) => +(a >= b), And: (a, b) => +(!!a && !!b), Or: (a, b) => +(!!a || !!b), Xor: (a, b) => +(!!a !== !!b),
  Max: Math.max, Min: Math.min, Pow: (a, b) => a ** b,
};

const isInt = (d: DType) => d === 'INT32' || d === 'INT64';

/** Broadcasts static operands and applies f; the result's datatype is `dtype`. */
function fold(dtype: DType, vals: StaticVal[], f: (xs: number[]) => number): StaticVal {
  const rank = Math.max(...vals.map((v) => v.shape.length));
  const shape = new Array<number>(rank).fill(1);
  for (const v of vals) {
    v.shape.forEach((d, i) => {
      const j = rank - v.shape.length + i;
      if (d !== 1) {
        if (shape[j] !== 1 && shape[j] !== d) unsupported(`shapes [${vals.map((x) => x.shape.join(', ')).join('] and [')}] do not broadcast`);
        shape[j] = d;
      }
    });
  }
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Array<number>(n);
  const idx = new Array<number>(rank).fill(0);
  const strides = vals.map((v) => {
    const s = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let i = v.shape.length - 1; i >= 0; i--) {
      s[rank - v.shape.length + i] = v.shape[i] === 1 ? 0 : acc;
      acc *= v.shape[i]!;
    }
    return s;
  });
  const xs = new Array<number>(vals.length);
  for (let k = 0; k < n; k++) {
    for (let a = 0; a < vals.length; a++) {
      let off = 0;
      for (let i = 0; i < rank; i++) off += idx[i]! * strides[a]![i]!;
      xs[a] = vals[a]!.values![off]!;
    }
    let r = f(xs);
    if (isInt(dtype)) r = Math.trunc(r);
    out[k] = r;
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  return staticFromValues(dtype, shape, out);
}

/** The operands as static values small enough to fold, or undefined. */
export function foldable(vals: (Val | undefined)[]): StaticVal[] | undefined {
  if (!vals.every((v) => v !== undefined && v.kind === 'static' && v.values !== undefined)) return undefined;
  const sv = vals as StaticVal[];
  const n = Math.max(...sv.map((v) => v.values!.length));
  return n <= FOLD_LIMIT ? sv : undefined;
}

const sameDType = (node: OnnxNode, a: Val, b: Val): void => {
  if (a.dtype !== b.dtype) unsupported(`its operands are ${a.dtype} and ${b.dtype}; ONNX requires one type here`);
};

const unary: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const folder = FOLD1[node.op];
  const f = folder !== undefined ? foldable([x]) : undefined;
  if (f !== undefined) {
    const dtype = node.op === 'Not' ? 'BOOL' : x.dtype;
    return [fold(dtype, f, (xs) => folder!(xs[0]!))];
  }
  if (node.op === 'Identity' && x.kind === 'static') return [x];
  return [cx.emit(UNARY[node.op]!, [x], {}, node.outputs[0])];
};

const binary: Handler = (cx, node) => {
  const a = cx.input(node, 0);
  const b = cx.input(node, 1);
  sameDType(node, a, b);
  const f = foldable([a, b]);
  const logical = ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor'].includes(node.op);
  if (f !== undefined) {
    const fn = FOLD2[node.op]!;
    return [fold(logical ? 'BOOL' : a.dtype, f, (xs) => fn(xs[0]!, xs[1]!))];
  }
  if (node.op === 'Equal' && a.dtype === 'BOOL') {
    // gradserve compares numbers; equality of BOOLs is "not xor"
    return [cx.emit('logical_not', [cx.emit('logical_xor', [a, b])], {}, node.outputs[0])];
  }
  return [cx.emit(BINARY[node.op]!, [a, b], {}, node.outputs[0])];
};

/** Sum, Mean, Max, Min: any number of broadcasting operands. */
const variadic: Handler = (cx, node) => {
  const xs = node.inputs.filter((n) => n !== '').map((n) => cx.get(n)!);
  if (xs.length === 0) unsupported('it has no inputs');
  for (const x of xs) sameDType(node, xs[0]!, x);
  const op = { Sum: 'add', Mean: 'add', Max: 'maximum', Min: 'minimum' }[node.op]!;
  const f = foldable(xs);
  if (f !== undefined && node.op !== 'Mean') {
    const fn = node.op === 'Sum' ? (v: number[]) => v.reduce((s, x) => s + x, 0) : node.op === 'Max' ? (v: number[]) => Math.max(...v) : (v: number[]) => Math.min(...v);
    return [fold(xs[0]!.dtype, f, fn)];
  }
  if (xs.length === 1) return [node.op === 'Mean' || xs[0]!.kind === 'static' ? cx.emit('identity', [xs[0]!], {}, node.outputs[0]) : xs[0]!];
  let acc = xs[0]!;
  for (let i = 1; i < xs.length; i++) {
    const last = i === xs.length - 1 && node.op !== 'Mean';
    acc = cx.emit(op, [acc, xs[i]!], {}, last ? node.outputs[0] : undefined);
  }
  if (node.op === 'Mean') acc = cx.emit('div', [acc, cx.scalar(xs.length, acc.dtype)], {}, node.outputs[0]);
  return [acc];
};

const pow: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  let y = cx.input(node, 1);
  const f = foldable([x, y]);
  if (f !== undefined) return [fold(x.dtype, f, (v) => v[0]! ** v[1]!)];
  // ONNX lets the exponent have its own type; gradserve's pow takes one datatype. A static exponent is converted at
  // import (Pow(x, 2) with an INT64 2 is exact: x*x); small integer exponents become the products they are.
  if (y.kind === 'static' && y.values !== undefined && y.values.length === 1) {
    const e = y.values[0]!;
    if (e === 1) return [cx.emit('identity', [x], {}, node.outputs[0])];
    if (e === 2) return [cx.emit('square', [x], {}, node.outputs[0])];
    if (e === 0.5 && (x.dtype === 'FP32' || x.dtype === 'FP64')) return [cx.emit('sqrt', [x], {}, node.outputs[0])];
    if (y.dtype !== x.dtype) y = staticFromValues(x.dtype, y.shape, y.values);
  } else if (y.dtype !== x.dtype) {
    y = cx.emit('cast', [y], { to: x.dtype });
  }
  return [cx.emit('pow', [x, y], {}, node.outputs[0])];
};

const mod: Handler = (cx, node) => {
  const a = cx.input(node, 0);
  const b = cx.input(node, 1);
  sameDType(node, a, b);
  const fmod = node.int('fmod', 0) === 1;
  if (!fmod && (a.dtype === 'FP32' || a.dtype === 'FP64')) unsupported('fmod = 0 on floating-point inputs is not allowed by ONNX');
  const f = foldable([a, b]);
  if (f !== undefined) return [fold(a.dtype, f, ([p, q]) => (q === 0 ? 0 : fmod ? p! % q! : p! - Math.floor(p! / q!) * q!))];
  return [cx.emit(fmod ? 'fmod' : 'mod', [a, b], {}, node.outputs[0])];
};

const where: Handler = (cx, node) => {
  const c = cx.input(node, 0);
  const a = cx.input(node, 1);
  const b = cx.input(node, 2);
  sameDType(node, a, b);
  const f = foldable([c, a, b]);
  if (f !== undefined) return [fold(a.dtype, f, ([p, q, r]) => (p ? q! : r!))];
  return [cx.emit('where', [c, a, b], {}, node.outputs[0])];
};

function bound(cx: ImportContext, node: OnnxNode, i: number, attr: string): Val | number | undefined {
  if (node.opset < 11) return node.has(attr) ? node.float(attr, 0) : undefined;
  const v = cx.get(node.inputs[i]);
  if (v === undefined) return undefined;
  if (v.kind === 'static' && v.values !== undefined && v.values.length === 1 && !Number.isNaN(v.values[0]!)) return v.values[0]!;
  return v;
}

const clip: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const lo = bound(cx, node, 1, 'min');
  const hi = bound(cx, node, 2, 'max');
  if ((lo === undefined || typeof lo === 'number') && (hi === undefined || typeof hi === 'number')) {
    if (lo !== undefined && hi !== undefined && lo > hi) {
      // ONNX: min > max sets every value to max (the numpy.clip order); gradserve refuses min > max.
      return [cx.emit('minimum', [cx.emit('maximum', [x, cx.scalar(lo, x.dtype)]), cx.scalar(hi, x.dtype)], {}, node.outputs[0])];
    }
    return [cx.emit('clip', [x], { min: lo ?? null, max: hi ?? null }, node.outputs[0])];
  }
  // Bounds computed at run time: the same as max(min) compositions (the gradient then goes to the bound it picks).
  const asVal = (v: Val | number): Val => (typeof v === 'number' ? cx.scalar(v, x.dtype) : v);
  let y: Val = x;
  if (lo !== undefined) y = cx.emit('maximum', [y, asVal(lo)], {}, hi === undefined ? node.outputs[0] : undefined);
  if (hi !== undefined) y = cx.emit('minimum', [y, asVal(hi)], {}, node.outputs[0]);
  return [lo === undefined && hi === undefined ? cx.emit('identity', [x], {}, node.outputs[0]) : y];
};

export function castTarget(to: number): DType {
  const d = EXACT[to];
  if (d === undefined) unsupported(`a cast to ${typeName(to)}, which gradserve has not (FP32, FP64, INT32, INT64, BOOL)`);
  return d;
}

const cast: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const to = node.op === 'CastLike' ? cx.input(node, 1).dtype : castTarget(node.int('to', 1));
  if (x.kind === 'static' && x.values !== undefined) {
    const conv = to === 'BOOL' ? (v: number) => (v !== 0 ? 1 : 0) : to === 'INT32' || to === 'INT64' ? Math.trunc : to === 'FP32' ? Math.fround : (v: number) => v;
    return [staticFromValues(to, x.shape, x.values.map((v) => (Number.isNaN(v) ? v : conv(v))))];
  }
  if (x.dtype === to) return [cx.emit('identity', [x], {}, node.outputs[0])];
  return [cx.emit('cast', [x], { to }, node.outputs[0])];
};

/** Activations with attributes, each a gradserve op or a composition of a few. */
const activation: Handler = (cx, node) => {
  const x = cx.input(node, 0);
  const out = node.outputs[0];
  switch (node.op) {
    case 'Gelu': {
      const approximate = node.string('approximate', 'none');
      if (approximate !== 'none' && approximate !== 'tanh') unsupported(`approximate "${approximate}"`);
      return [cx.emit('gelu', [x], { approximate }, out)];
    }
    case 'LeakyRelu': return [cx.emit('leaky_relu', [x], { alpha: node.float('alpha', 0.01) }, out)];
    case 'Elu': return [cx.emit('elu', [x], { alpha: node.float('alpha', 1) }, out)];
    case 'Celu': return [cx.emit('celu', [x], { alpha: node.float('alpha', 1) }, out)];
    case 'Selu': {
      const alpha = node.float('alpha', 1.67326319217681884765625);
      const gamma = node.float('gamma', 1.05070102214813232421875);
      if (Math.abs(alpha - 1.6732632423543772) < 1e-6 && Math.abs(gamma - 1.0507009873554805) < 1e-6) return [cx.emit('selu', [x], {}, out)];
      // gamma * (x > 0 ? x : alpha * (exp(x) - 1)) = gamma * elu(x; alpha)
      return [cx.emit('mul', [cx.emit('elu', [x], { alpha }), cx.scalar(gamma, x.dtype)], {}, out)];
    }
    case 'HardSigmoid': {
      const alpha = node.float('alpha', 0.2);
      const beta = node.float('beta', 0.5);
      if (Math.abs(alpha - 1 / 6) < 1e-7 && Math.abs(beta - 0.5) < 1e-7) return [cx.emit('hardsigmoid', [x], {}, out)];
      const lin = cx.emit('add', [cx.emit('mul', [x, cx.scalar(alpha, x.dtype)]), cx.scalar(beta, x.dtype)]);
      return [cx.emit('clip', [lin], { min: 0, max: 1 }, out)];
    }
    case 'ThresholdedRelu': {
      const alpha = node.float('alpha', 1);
      return [cx.emit('where', [cx.emit('greater', [x, cx.scalar(alpha, x.dtype)]), x, cx.scalar(0, x.dtype)], {}, out)];
    }
    case 'PRelu': {
      const slope = cx.input(node, 1);
      return [cx.emit('where', [cx.emit('less', [x, cx.scalar(0, x.dtype)]), cx.emit('mul', [x, slope]), x], {}, out)];
    }
    case 'Shrink': {
      const lambd = node.float('lambd', 0.5);
      const bias = node.float('bias', 0);
      const lo = cx.emit('where', [cx.emit('less', [x, cx.scalar(-lambd, x.dtype)]), cx.emit('add', [x, cx.scalar(bias, x.dtype)]), cx.scalar(0, x.dtype)]);
      return [cx.emit('where', [cx.emit('greater', [x, cx.scalar(lambd, x.dtype)]), cx.emit('sub', [x, cx.scalar(bias, x.dtype)]), lo], {}, out)];
    }
    case 'IsInf': {
      const pos = node.int('detect_positive', 1) === 1;
      const neg = node.int('detect_negative', 1) === 1;
      if (pos && neg) return [cx.emit('isinf', [x], {}, out)];
      if (!pos && !neg) return [cx.emit('logical_and', [cx.emit('isinf', [x]), cx.emit('isnan', [x])], {}, out)];
      return [cx.emit('equal', [x, cx.scalar(pos ? Infinity : -Infinity, x.dtype)], {}, out)];
    }
    default:
      unsupported('no mapping');
  }
};

export const ELEMENTWISE: Record<string, Handler> = {
  ...Object.fromEntries(Object.keys(UNARY).map((k) => [k, unary])),
  ...Object.fromEntries(Object.keys(BINARY).map((k) => [k, binary])),
  Sum: variadic, Mean: variadic, Max: variadic, Min: variadic,
  Pow: pow, Mod: mod, Where: where, Clip: clip, Cast: cast, CastLike: cast,
  Gelu: activation, LeakyRelu: activation, Elu: activation, Celu: activation, Selu: activation, HardSigmoid: activation,
  ThresholdedRelu: activation, PRelu: activation, Shrink: activation, IsInf: activation,
};
