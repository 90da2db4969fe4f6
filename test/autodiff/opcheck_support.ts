/**
 * Generic per-op checks driven by each OpDef's `samples`: the op as a one-node graph, FP64 central differences of
 * <r, y(x)> against the VJP with cotangent r, and the JVP/VJP identity <u, J v> = <Jᵀ u, v>.
 */
import type { Graph } from '../../src/graph/types.js';
import type { OpDef, OpSample, SampleInput } from '../../src/ops/types.js';
import { isFloat, type DType } from '../../src/tensor/dtype.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';

/** m·mᵀ + n·I of every (..., n, n) matrix of t (a sample input marked `spd`). */
export function spdOf(t: Tensor): Tensor {
  const n = t.shape[t.shape.length - 1]!;
  const m = t.data as Float64Array | Float32Array;
  const out = tensor(t.dtype, t.shape);
  const o = out.data as Float64Array | Float32Array;
  for (let base = 0; base < m.length; base += n * n) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let acc = i === j ? n : 0;
        for (let k = 0; k < n; k++) acc += m[base + i * n + k]! * m[base + j * n + k]!;
        o[base + i * n + j] = acc;
      }
    }
  }
  return out;
}

export function sampleTensor(s: SampleInput, r: () => number): Tensor {
  if (s.spd) return spdOf(sampleTensor({ ...s, spd: false }, r));
  const dtype: DType = s.dtype ?? 'FP64';
  const n = numel(s.shape);
  if (s.values) return tensor(dtype, s.shape, dtype === 'INT64' ? s.values.map((v) => BigInt(v)) : s.values);
  const [lo, hi] = s.range ?? [-2, 2];
  const vals = Array.from({ length: n }, () => lo + (hi - lo) * r());
  if (dtype === 'BOOL') return tensor(dtype, s.shape, vals.map((v) => (v > (lo + hi) / 2 ? 1 : 0)));
  if (dtype === 'INT32') return tensor(dtype, s.shape, vals.map(Math.floor));
  if (dtype === 'INT64') return tensor(dtype, s.shape, vals.map((v) => BigInt(Math.floor(v))));
  return tensor(dtype, s.shape, vals);
}

export function opGraph(op: OpDef, sample: OpSample, inputs: Tensor[]): Graph {
  const names = inputs.map((_, i) => `in${i}`);
  return {
    inputs: Object.fromEntries(inputs.map((t, i) => [names[i], { shape: [...t.shape], datatype: t.dtype }])),
    nodes: [{ name: 'y', op: op.name, inputs: names, attrs: (sample.attrs ?? {}) as Record<string, unknown> }],
    outputs: ['y'],
  };
}

export function randomLike(t: { shape: readonly number[]; dtype: DType }, r: () => number): Tensor {
  return tensor(t.dtype, t.shape, Array.from({ length: numel(t.shape) }, () => 2 * r() - 1));
}

export function dot(a: Tensor, b: Tensor): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Number(a.data[i]) * Number(b.data[i]);
  return s;
}

export function floatInputs(inputs: Record<string, Tensor>): string[] {
  return Object.keys(inputs).filter((k) => isFloat(inputs[k]!.dtype));
}

/** Central differences of f at every element of inputs[name] (FP64). */
export async function numericGrad(f: (ins: Record<string, Tensor>) => Promise<number>, inputs: Record<string, Tensor>, name: string, eps = 1e-6): Promise<number[]> {
  const base = inputs[name]!;
  const out: number[] = [];
  for (let i = 0; i < base.data.length; i++) {
    const plus = tensor(base.dtype, base.shape, Float64Array.from(base.data as Float64Array));
    const minus = tensor(base.dtype, base.shape, Float64Array.from(base.data as Float64Array));
    (plus.data as Float64Array)[i]! += eps;
    (minus.data as Float64Array)[i]! -= eps;
    const fp = await f({ ...inputs, [name]: plus });
    const fm = await f({ ...inputs, [name]: minus });
    out.push((fp - fm) / (2 * eps));
  }
  return out;
}

/** max |a - n| / (atol + |n|) so that 1 means "at the tolerance". */
export function worst(analytic: ArrayLike<number | bigint>, numeric: readonly number[], atol: number, rtol: number): { ratio: number; at: number } {
  let ratio = 0;
  let at = -1;
  for (let i = 0; i < numeric.length; i++) {
    const a = Number(analytic[i]);
    const n = numeric[i]!;
    const q = Math.abs(a - n) / (atol + rtol * Math.abs(n));
    if (!(q <= ratio)) {
      ratio = q;
      at = i;
    }
  }
  return { ratio, at };
}
