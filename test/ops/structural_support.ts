/**
 * Test support for the structural op families: the shared Recorder kit (./recorder.ts), which runs an op and its
 * derivative rules through the engine's own `evaluate`, and a rule checker: VJP against central differences and
 * <u, J v> = <Jᵀ u, v>.
 */
import type { OpSample } from '../../src/ops/types.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { f64, i64, jvpOf, runOp, vjpOf } from './recorder.js';

export { f32, f64, i32, i64, jvpOf, opDef, Recorder, runOp, vjpOf } from './recorder.js';

/** Plain numbers with signed zeros kept (toEqual tells -0 from 0), unlike elementwise_support's `values`. */
export const values = (t: Tensor | null): number[] => (t === null ? [] : Array.from(t.data as ArrayLike<number | bigint>, Number));

export function sampleTensors(s: OpSample, rand: () => number): Tensor[] {
  return s.inputs.map((inp) => {
    const dtype = inp.dtype ?? 'FP64';
    const n = inp.shape.reduce((a, b) => a * b, 1);
    const [lo, hi] = inp.range ?? [-2, 2];
    const vals = inp.values ?? Array.from({ length: n }, () => lo + (hi - lo) * rand());
    return dtype === 'INT64' ? i64(inp.shape, vals) : tensor(dtype, inp.shape, vals);
  });
}

const dot = (a: number[], b: number[]) => a.reduce((p, v, i) => p + v * b[i]!, 0);

export interface RuleCheck { maxFdError: number; dualityError: number; shapesOk: boolean }

/**
 * Checks one sample's VJP against central differences of <u, f(x)> and its JVP against the VJP via
 * <u, J v> = sum_i <Jᵀ_i u, v_i>, all in FP64.
 */
export async function checkRules(op: string, s: OpSample, seed = 1): Promise<RuleCheck> {
  const rand = rng(seed);
  const xs = sampleTensors(s, rand);
  const attrs = (s.attrs ?? {}) as Record<string, unknown>;
  const y = await runOp(op, xs, attrs);
  const u = f64([...y.shape], Array.from({ length: y.data.length }, () => rand() * 2 - 1));
  const grads = await vjpOf(op, xs, u, attrs);
  const diff = xs.map((x) => x.dtype === 'FP64');
  let shapesOk = true, maxFdError = 0;
  const eps = 1e-6;
  for (let i = 0; i < xs.length; i++) {
    if (!diff[i]) continue;
    const gi = grads[i] ?? null;
    if (gi !== null && (gi.shape.join() !== xs[i]!.shape.join() || gi.dtype !== 'FP64')) shapesOk = false;
    const base = values(xs[i]!);
    for (let j = 0; j < base.length; j++) {
      const at = (d: number) => {
        const v = [...base];
        v[j] = v[j]! + d;
        return xs.map((x, k) => (k === i ? f64([...x.shape], v) : x));
      };
      const fp = dot(values(await runOp(op, at(eps), attrs)), values(u));
      const fm = dot(values(await runOp(op, at(-eps), attrs)), values(u));
      const num = (fp - fm) / (2 * eps);
      const ana = gi === null ? 0 : values(gi)[j]!;
      maxFdError = Math.max(maxFdError, Math.abs(num - ana) / Math.max(1, Math.abs(num)));
    }
  }
  const ts = xs.map((x, i) => (diff[i] ? f64([...x.shape], Array.from({ length: x.data.length }, () => rand() * 2 - 1)) : null));
  const jv = await jvpOf(op, xs, ts, attrs);
  if (jv !== null && jv.shape.join() !== y.shape.join()) shapesOk = false;
  const lhs = jv === null ? 0 : dot(values(u), values(jv));
  let rhs = 0;
  ts.forEach((t, i) => { if (t !== null && grads[i]) rhs += dot(values(grads[i]!), values(t)); });
  return { maxFdError, dualityError: Math.abs(lhs - rhs) / Math.max(1, Math.abs(lhs)), shapesOk };
}
