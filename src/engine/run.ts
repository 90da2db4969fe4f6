/**
 * grad / vjp / jvp on tensors: build (or fetch from the cache) the derivative graph for these input shapes, then run
 * it with the ordinary executor. Derivative graphs are cached by (graph hash, input and cotangent/tangent shapes and
 * datatypes, of/wrt), so a training loop pays for the transform once. Batched vjp/jvp run the same derivative graph
 * vectorized over their seeds (batched.ts); grad with `per_example` is per_example.ts.
 */
import { fail } from '../errors.js';
import type { BatchOptions, GradOptions, GradResult, JvpResult, Tensors } from '../engine.types.js';
import { compileRequest, runCompiled } from './evaluate.js';
import { LruCache, tensorsSignature } from '../graph/hash.js';
import { checkAgainstDeclaration, inferAll, inputMetasFromTensors, type Metas } from '../graph/infer.js';
import type { Graph } from '../graph/types.js';
import { checkValueNames, compileGraph, constantBytes, type CompiledGraph } from '../graph/validate.js';
import type { Tensor } from '../tensor/tensor.js';
import { buildJvp, tangentName } from '../autodiff/jvp.js';
import { buildVjp, checkDifferentiable, cotangentName, gradName, type Seed } from '../autodiff/vjp.js';
import { nameMap } from '../graph/names.js';
import { batchSize, checkBatched, memberMetas, runBatched } from './batched.js';
import { engineCore } from './core.js';
import { perExampleGrad } from './per_example.js';

interface Derived {
  compiled: CompiledGraph;
  /** forward outputs to report */
  forward: string[];
  /** their names in the derivative graph */
  forwardInDerived: string[];
}

export const derivativeCache = new LruCache<Derived>(256, 1 << 30, (d) => constantBytes(d.compiled));

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

function checkName(c: CompiledGraph, name: unknown, path: string, what: string): asserts name is string {
  if (typeof name !== 'string') fail('INVALID_REQUEST', `${path} must be a value name (string)`, path);
  if (!c.kinds.has(name)) fail('UNKNOWN_VALUE', `${what} "${name}" names no input, constant or node of the graph`, path);
}

function checkList(c: CompiledGraph, names: unknown, path: string, what: string): asserts names is string[] {
  if (!Array.isArray(names)) fail('INVALID_REQUEST', `${path} must be a list of value names`, path);
  checkValueNames(c, names, path, what);
}

function checkTensorMap(m: unknown, path: string): asserts m is Tensors {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('INVALID_REQUEST', `${path} must be an object {name: tensor}`, path);
}

function metasFor(c: CompiledGraph, inputs: Tensors): Metas {
  return inferAll(c, inputMetasFromTensors(c, inputs));
}

function pick(r: Map<string, Tensor>, names: readonly string[], rename: (n: string) => string = (n) => n): Tensors {
  const out: Tensors = nameMap();
  for (const n of names) out[n] = r.get(rename(n))!;
  return out;
}

function pickRenamed(r: Map<string, Tensor>, d: Derived): Tensors {
  const out: Tensors = nameMap();
  d.forward.forEach((n, i) => (out[n] = r.get(d.forwardInDerived[i]!)!));
  return out;
}

export async function grad(graph: Graph, inputs: Tensors, of: string, wrt: string[], opts?: GradOptions): Promise<GradResult> {
  const c = compileRequest(graph, opts);
  checkName(c, of, 'of', 'of');
  checkList(c, wrt, 'wrt', 'wrt value');
  if (opts?.per_example !== undefined) return perExampleGrad(engineCore, c, inputs, of, wrt, opts.per_example, opts);
  const key = `${c.id}|${tensorsSignature(inputs)}|grad|${JSON.stringify([of, wrt])}`;
  let d = derivativeCache.get(key);
  if (d === undefined) {
    const forward = unique([...c.outputs, of]);
    const seeds: Seed[] = [{ kind: 'ones', output: of, path: 'of' }];
    const b = buildVjp(c, metasFor(c, inputs), seeds, wrt, wrt.map((_, i) => `wrt[${i}]`), forward);
    d = { compiled: compileGraph(b.graph, undefined, c), forward, forwardInDerived: forward.map((n) => b.rename.get(n) ?? n) };
    derivativeCache.set(key, d);
  }
  const r = await runCompiled(d.compiled, inputs, [...d.forwardInDerived, ...unique(wrt).map(gradName)], opts);
  return { outputs: pickRenamed(r, d), gradients: pick(r, unique(wrt), gradName) };
}

/** Shape and datatype of each seed tensor; a batched one's without its leading axis. */
function seedMetas(tensors: Tensors, batched: boolean): Record<string, Pick<Tensor, 'dtype' | 'shape'>> {
  return batched ? memberMetas(tensors) : tensors;
}

/** A seed tensor against its value: the value's own shape, or [B, ...shape] when batched. */
function checkSeed(t: Tensor, m: { dtype: Tensor['dtype']; shape: readonly (number | null)[] }, path: string, role: string, of: string, batched: boolean): void {
  if (batched) checkBatched(t, { datatype: m.dtype, shape: m.shape as number[] }, path, role);
  else checkAgainstDeclaration(`${role} of ${of}`, t, { dtype: m.dtype, shape: m.shape as (number | null)[] }, path);
}

function vjpDerived(c: CompiledGraph, inputs: Tensors, cotangents: Tensors, wrt: string[], batched: boolean): Derived {
  const outs = Object.keys(cotangents);
  const key = `${c.id}|${tensorsSignature(inputs)}|vjp|${tensorsSignature(seedMetas(cotangents, batched))}|${JSON.stringify(wrt)}`;
  let d = derivativeCache.get(key);
  if (d === undefined) {
    const metas = metasFor(c, inputs);
    for (const o of outs) {
      const path = `cotangents.${o}`;
      checkName(c, o, path, 'cotangent output');
      checkDifferentiable(metas, o, path, 'output');
      checkSeed(cotangents[o]!, metas.get(o)!, path, 'cotangent', o, batched);
    }
    const forward = [...c.outputs];
    const seeds: Seed[] = outs.map((o) => ({ kind: 'input', output: o, path: `cotangents.${o}` }));
    const b = buildVjp(c, metas, seeds, wrt, wrt.map((_, i) => `wrt[${i}]`), forward);
    d = { compiled: compileGraph(b.graph, undefined, c), forward, forwardInDerived: forward.map((n) => b.rename.get(n) ?? n) };
    derivativeCache.set(key, d);
  }
  return d;
}

export async function vjp(graph: Graph, inputs: Tensors, cotangents: Tensors, wrt: string[], opts?: BatchOptions): Promise<GradResult> {
  const c = compileRequest(graph, opts);
  checkTensorMap(cotangents, 'cotangents');
  checkList(c, wrt, 'wrt', 'wrt value');
  const batched = opts?.batched === true;
  const B = batched ? batchSize(cotangents, 'cotangents', 'vjp') : 0;
  const outs = Object.keys(cotangents);
  const d = vjpDerived(c, inputs, cotangents, wrt, batched);
  const seeds: Tensors = nameMap();
  for (const o of outs) seeds[cotangentName(o)] = cotangents[o]!;
  if (batched) {
    const run = await runBatched(engineCore, {
      derived: d.compiled.graph, key: d.compiled.id, inputs, seeds, B,
      plain: d.forwardInDerived, batched: unique(wrt).map(gradName), what: 'batched vjp',
      labels: Object.fromEntries(unique(wrt).map((w) => [gradName(w), `gradients.${w}`])),
    }, opts!);
    return { outputs: renamedFrom(run.plain, d), gradients: pick(toMap(run.batched), unique(wrt), gradName), batching: run.report };
  }
  const r = await runCompiled(d.compiled, { ...inputs, ...seeds }, [...d.forwardInDerived, ...unique(wrt).map(gradName)], opts);
  return { outputs: pickRenamed(r, d), gradients: pick(r, unique(wrt), gradName) };
}

function jvpDerived(c: CompiledGraph, inputs: Tensors, tangents: Tensors, outs: string[], batched: boolean): Derived {
  const wrt = Object.keys(tangents);
  const key = `${c.id}|${tensorsSignature(inputs)}|jvp|${tensorsSignature(seedMetas(tangents, batched))}|${JSON.stringify(outs)}`;
  let d = derivativeCache.get(key);
  if (d === undefined) {
    const metas = metasFor(c, inputs);
    for (const x of wrt) {
      const path = `tangents.${x}`;
      checkName(c, x, path, 'tangent input');
      if (c.kinds.get(x) !== 'input') fail('UNKNOWN_VALUE', `"${x}" is a ${c.kinds.get(x)}, not a graph input; tangents are given for graph inputs`, path);
      checkDifferentiable(metas, x, path, 'tangent input');
      checkSeed(tangents[x]!, metas.get(x)!, path, 'tangent', x, batched);
    }
    // API.md: outputs hold graph.outputs plus the `of` values not among them
    const forward = unique([...c.outputs, ...outs]);
    const b = buildJvp(c, metas, wrt, wrt.map((x) => `tangents.${x}`), outs, forward);
    d = { compiled: compileGraph(b.graph, undefined, c), forward, forwardInDerived: forward.map((n) => b.rename.get(n) ?? n) };
    derivativeCache.set(key, d);
  }
  return d;
}

export async function jvp(graph: Graph, inputs: Tensors, tangents: Tensors, of?: string[], opts?: BatchOptions): Promise<JvpResult> {
  const c = compileRequest(graph, opts);
  checkTensorMap(tangents, 'tangents');
  if (of !== undefined) checkList(c, of, 'of', 'of');
  const outs = unique(of ?? c.outputs);
  const wrt = Object.keys(tangents);
  const batched = opts?.batched === true;
  const B = batched ? batchSize(tangents, 'tangents', 'jvp') : 0;
  const d = jvpDerived(c, inputs, tangents, outs, batched);
  const seeds: Tensors = nameMap();
  for (const x of wrt) seeds[tangentName(x)] = tangents[x]!;
  if (batched) {
    const run = await runBatched(engineCore, {
      derived: d.compiled.graph, key: d.compiled.id, inputs, seeds, B,
      plain: d.forwardInDerived, batched: outs.map(tangentName), what: 'batched jvp',
      labels: Object.fromEntries(outs.map((o) => [tangentName(o), `tangents.${o}`])),
    }, opts!);
    return { outputs: renamedFrom(run.plain, d), tangents: pick(toMap(run.batched), outs, tangentName), batching: run.report };
  }
  const r = await runCompiled(d.compiled, { ...inputs, ...seeds }, [...d.forwardInDerived, ...outs.map(tangentName)], opts);
  return { outputs: pickRenamed(r, d), tangents: pick(r, outs, tangentName) };
}

function toMap(t: Tensors): Map<string, Tensor> {
  return new Map(Object.entries(t));
}

function renamedFrom(values: Tensors, d: Derived): Tensors {
  return pickRenamed(toMap(values), d);
}
