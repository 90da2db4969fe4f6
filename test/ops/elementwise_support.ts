/**
 * Test support for the elementwise families: a Recorder that implements the Emitter of derivative rules by appending
 * wire-graph nodes (so a rule's output runs through the engine's own `evaluate`, on the native kernels), and small
 * tensor/reference helpers.
 */
import { evaluate } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { getOp } from '../../src/ops/registry.js';
import type { Emitter, OpDef, Ref } from '../../src/ops/types.js';
import type { DType } from '../../src/tensor/dtype.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';

export function opDef(name: string): OpDef {
  const d = getOp(name);
  if (d === undefined) throw new Error(`op ${name} is not registered`);
  return d;
}

export class Recorder implements Emitter {
  readonly graph: Required<Pick<Graph, 'inputs' | 'constants' | 'nodes'>> = { inputs: {}, constants: {}, nodes: [] };
  readonly feeds: Record<string, Tensor> = {};
  private n = 0;

  input(t: Tensor): Ref {
    const name = `in${this.n++}`;
    this.graph.inputs[name] = { shape: [...t.shape], datatype: t.dtype };
    this.feeds[name] = t;
    return { name, shape: [...t.shape], dtype: t.dtype };
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

  /** Runs the recorded graph; null refs (zero derivatives) come back as null. */
  async run(refs: (Ref | null)[]): Promise<(Tensor | null)[]> {
    const live = refs.filter((r): r is Ref => r !== null).map((r) => r.name);
    const outs = live.filter((n) => !(n in this.feeds));
    const r = outs.length ? await evaluate({ ...this.graph, outputs: outs }, this.feeds) : { outputs: {} };
    return refs.map((ref) => (ref === null ? null : (this.feeds[ref.name] ?? r.outputs[ref.name]!)));
  }
}

/** Value of `op` on `inputs`, run by the engine. */
export async function runOp(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}): Promise<Tensor> {
  const rec = new Recorder();
  const y = rec.op(op, inputs.map((t) => rec.input(t)), attrs);
  return (await rec.run([y]))[0]!;
}

/** The op's VJP rule applied to cotangent `g` (default ones), run by the engine: one gradient per input (null = 0). */
export async function vjpOf(op: string, inputs: Tensor[], attrs: Record<string, unknown> = {}, g?: Tensor): Promise<(Tensor | null)[]> {
  const def = opDef(op);
  const rec = new Recorder();
  const xs = inputs.map((t) => rec.input(t));
  const y = rec.op(op, xs, attrs);
  const cot = rec.input(g ?? ones(y.dtype, y.shape as number[]));
  return rec.run(def.vjp!({ e: rec, inputs: xs, output: y, g: cot, attrs: def.attrs.parse(attrs) }));
}

/** The op's JVP rule applied to `tangents` (null = zero), run by the engine. */
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
export const bool = (shape: number[], data: number[]): Tensor => tensor('BOOL', shape, data);
export const ones = (dtype: DType, shape: number[]): Tensor => tensor(dtype, shape, new Array(shape.reduce((a, b) => a * b, 1)).fill(1));
/** Plain numbers (with -0 read as 0: signed zeros are not part of what these tests pin). */
export const values = (t: Tensor | null): number[] =>
  t === null ? [] : Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v) + 0);

/** Element-wise closeness where NaN matches NaN and infinities must match exactly. */
export function expectClose(actual: readonly number[], expected: readonly number[], rtol: number, atol = 0, what = ''): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} != ${expected.length}`);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : !Number.isFinite(e) ? a === e : Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) throw new Error(`${what}[${i}]: got ${a}, expected ${e}`);
  });
}

/** erf by its Maclaurin series (|x| <= 3: about 1e-14 absolute) and +-1 beyond 6 where the double rounds to it. */
export function erfRef(x: number): number {
  if (Math.abs(x) >= 6) return Math.sign(x);
  if (Math.abs(x) > 3) throw new Error('erfRef is only accurate for |x| <= 3');
  let sum = 0;
  let term = x;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
    if (Math.abs(term) < 1e-18) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** Broadcast reference: out[i] = f(a[ia], b[ib]) for NumPy broadcasting of two shapes. */
export function broadcast2(as: number[], a: number[], bs: number[], b: number[], f: (x: number, y: number) => number): { shape: number[]; data: number[] } {
  const rank = Math.max(as.length, bs.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const pa = pad(as);
  const pb = pad(bs);
  const shape = pa.map((d, i) => Math.max(d, pb[i]!));
  const n = shape.reduce((x, y) => x * y, 1);
  const at = (s: number[], coords: number[]) => s.reduce((off, d, i) => off * d + (d === 1 ? 0 : coords[i]!), 0);
  const data: number[] = [];
  for (let k = 0; k < n; k++) {
    const coords: number[] = [];
    let r = k;
    for (let i = rank - 1; i >= 0; i--) {
      coords[i] = r % shape[i]!;
      r = Math.floor(r / shape[i]!);
    }
    data.push(f(a[at(pa, coords)]!, b[at(pb, coords)]!));
  }
  return { shape, data };
}
