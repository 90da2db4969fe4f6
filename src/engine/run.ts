/**
 * grad / vjp / jvp on tensors: build (or fetch from the cache) the derivative graph for these input shapes, then run
 * it with the ordinary executor. Derivative graphs are cached by (graph hash, input and cotangent/tangent shapes and
 * datatypes, of/wrt), so a training loop pays for the transform once.
 */
import { fail } from '../errors.js';
import type { GradResult, JvpResult, RunOptions, Tensors } from '../engine.types.js';
import { compileRequest, runCompiled } from './evaluate.js';
import { LruCache, tensorsSignature } from '../graph/hash.js';
import { checkAgainstDeclaration, inferAll, inputMetasFromTensors, type Metas } from '../graph/infer.js';
import type { Graph } from '../graph/types.js';
import { checkValueNames, compileGraph, constantBytes, type CompiledGraph } from '../graph/validate.js';
import type { Tensor } from '../tensor/tensor.js';
import { buildJvp, tangentName } from '../autodiff/jvp.js';
import { buildVjp, checkDifferentiable, cotangentName, gradName, type Seed } from '../autodiff/vjp.js';
import { nameMap } from '../graph/names.js';

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

export async function grad(graph: Graph, inputs: Tensors, of: string, wrt: string[], opts?: RunOptions): Promise<GradResult> {
  const c = compileRequest(graph, opts);
  checkName(c, of, 'of', 'of');
  checkList(c, wrt, 'wrt', 'wrt value');
  const key = `${c.hash}|${tensorsSignature(inputs)}|grad|${JSON.stringify([of, wrt])}`;
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

export async function vjp(graph: Graph, inputs: Tensors, cotangents: Tensors, wrt: string[], opts?: RunOptions): Promise<GradResult> {
  const c = compileRequest(graph, opts);
  checkTensorMap(cotangents, 'cotangents');
  checkList(c, wrt, 'wrt', 'wrt value');
  const outs = Object.keys(cotangents);
  const key = `${c.hash}|${tensorsSignature(inputs)}|vjp|${tensorsSignature(cotangents)}|${JSON.stringify(wrt)}`;
  let d = derivativeCache.get(key);
  if (d === undefined) {
    const metas = metasFor(c, inputs);
    for (const o of outs) {
      const path = `cotangents.${o}`;
      checkName(c, o, path, 'cotangent output');
      checkDifferentiable(metas, o, path, 'output');
      const m = metas.get(o)!;
      checkAgainstDeclaration(`cotangent of ${o}`, cotangents[o]!, { dtype: m.dtype, shape: m.shape }, path);
    }
    const forward = [...c.outputs];
    const seeds: Seed[] = outs.map((o) => ({ kind: 'input', output: o, path: `cotangents.${o}` }));
    const b = buildVjp(c, metas, seeds, wrt, wrt.map((_, i) => `wrt[${i}]`), forward);
    d = { compiled: compileGraph(b.graph, undefined, c), forward, forwardInDerived: forward.map((n) => b.rename.get(n) ?? n) };
    derivativeCache.set(key, d);
  }
  const all: Tensors = { ...inputs };
  for (const o of outs) all[cotangentName(o)] = cotangents[o]!;
  const r = await runCompiled(d.compiled, all, [...d.forwardInDerived, ...unique(wrt).map(gradName)], opts);
  return { outputs: pickRenamed(r, d), gradients: pick(r, unique(wrt), gradName) };
}

export async function jvp(graph: Graph, inputs: Tensors, tangents: Tensors, of?: string[], opts?: RunOptions): Promise<JvpResult> {
  const c = compileRequest(graph, opts);
  checkTensorMap(tangents, 'tangents');
  if (of !== undefined) checkList(c, of, 'of', 'of');
  const outs = unique(of ?? c.outputs);
  const wrt = Object.keys(tangents);
  const key = `${c.hash}|${tensorsSignature(inputs)}|jvp|${tensorsSignature(tangents)}|${JSON.stringify(outs)}`;
  let d = derivativeCache.get(key);
  if (d === undefined) {
    const metas = metasFor(c, inputs);
    for (const x of wrt) {
      const path = `tangents.${x}`;
      checkName(c, x, path, 'tangent input');
      if (c.kinds.get(x) !== 'input') fail('UNKNOWN_VALUE', `"${x}" is a ${c.kinds.get(x)}, not a graph input; tangents are given for graph inputs`, path);
      checkDifferentiable(metas, x, path, 'tangent input');
      const m = metas.get(x)!;
      checkAgainstDeclaration(`tangent of ${x}`, tangents[x]!, { dtype: m.dtype, shape: m.shape }, path);
    }
    // API.md: outputs hold graph.outputs plus the `of` values not among them
    const forward = unique([...c.outputs, ...outs]);
    const b = buildJvp(c, metas, wrt, wrt.map((x) => `tangents.${x}`), outs, forward);
    d = { compiled: compileGraph(b.graph, undefined, c), forward, forwardInDerived: forward.map((n) => b.rename.get(n) ?? n) };
    derivativeCache.set(key, d);
  }
  const all: Tensors = { ...inputs };
  for (const x of wrt) all[tangentName(x)] = tangents[x]!;
  const r = await runCompiled(d.compiled, all, [...d.forwardInDerived, ...outs.map(tangentName)], opts);
  return { outputs: pickRenamed(r, d), tangents: pick(r, outs, tangentName) };
}
