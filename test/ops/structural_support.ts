/**
 * Test support for the structural op families: an Emitter that records wire-graph nodes (so an op and its derivative
 * rules run through the engine's own `evaluate`, on the native kernels), and a rule checker: VJP against central
 * differences and <u, J v> = <Jᵀ u, v>.
 */
import { evaluate } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { getOp } from '../../src/ops/registry.js';
import type { Emitter, OpDef, OpSample, Ref } from '../../src/ops/types.js';
import type { DType } from '../../src/tensor/dtype.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';

export function opDef(name: string): OpDef {
  const d = getOp(name);
  if (d === undefined) throw new Error(`op ${name} is not registered`);
  return d;
}

export class Recorder implements Emitter {
  readonly graph: Required<Pick<Graph, 'inputs' | 'constants' | 'nodes'>> = { inputs: {}, constants: {}, nodes: [] };
  readonly feeds: Record<string, Tensor> = {};
  private n = 0;

  /** A graph input fed with `t`; `declared` (null = unknown dim) makes the rules see a symbolic shape. */
  input(t: Tensor, declared?: (number | null)[]): Ref {
    const name = `in${this.n++}`;
    const shape = declared ?? [...t.shape];
    this.graph.inputs[name] = { shape, datatype: t.dtype };
    this.feeds[name] = t;
    return { name, shape, dtype: t.dtype };
  }

  scalar(value: number, dtype: DType): Ref {
    const name = `c${this.n++}`;
    this.graph.constants[name] = { shape: [], datatype: dtype, data: [value] };
    return { name, shape: [], dtype };
  }

  op(op: string, inputs: Ref[], attrs: Record<string, unknown> = {}): Ref {
    const def = opDef(op);
    const name = `n${this.n++}`;
    const ctx = { node: name, op, path: `graph.nodes[${this.graph.nodes.length}]` };
    const parsed = def.attrs.parse(attrs);
    def.check?.(parsed, ctx);
    const meta = def.infer(inputs, parsed, ctx);
    this.graph.nodes.push({ name, op, inputs: inputs.map((r) => r.name), attrs });
    return { name, ...meta };
  }

  async run(refs: (Ref | null)[]): Promise<(Tensor | null)[]> {
    const live = refs.filter((r): r is Ref => r !== null).map((r) => r.name).filter((n) => !(n in this.feeds));
    const r = live.length ? await evaluate({ ...this.graph, outputs: [...new Set(live)] }, this.feeds) : { outputs: {} };
    return refs.map((ref) => (ref === null ? null : (this.feeds[ref.name] ?? r.outputs[ref.name]!)));
  }
}

export async function runOp(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}): Promise<Tensor> {
  const rec = new Recorder();
  const y = rec.op(op, inputs.map((t) => rec.input(t)), attrs);
  return (await rec.run([y]))[0]!;
}

export async function vjpOf(op: string, inputs: Tensor[], g: Tensor, attrs: Record<string, unknown> = {}): Promise<(Tensor | null)[]> {
  const def = opDef(op);
  const rec = new Recorder();
  const xs = inputs.map((t) => rec.input(t));
  const y = rec.op(op, xs, attrs);
  const cot = rec.input(g);
  return rec.run(def.vjp!({ e: rec, inputs: xs, output: y, g: cot, attrs: def.attrs.parse(attrs) }));
}

export async function jvpOf(op: string, inputs: Tensor[], tangents: (Tensor | null)[], attrs: Record<string, unknown> = {}): Promise<Tensor | null> {
  const def = opDef(op);
  const rec = new Recorder();
  const xs = inputs.map((t) => rec.input(t));
  const y = rec.op(op, xs, attrs);
  const ts = tangents.map((t) => (t === null ? null : rec.input(t)));
  return (await rec.run([def.jvp!({ e: rec, inputs: xs, output: y, tangents: ts, attrs: def.attrs.parse(attrs) })]))[0]!;
}

export const f64 = (shape: number[], data: number[]): Tensor => tensor('FP64', shape, data);
export const f32 = (shape: number[], data: number[]): Tensor => tensor('FP32', shape, data);
export const i32 = (shape: number[], data: number[]): Tensor => tensor('INT32', shape, data);
export const i64 = (shape: number[], data: number[]): Tensor => tensor('INT64', shape, data.map(BigInt));
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
