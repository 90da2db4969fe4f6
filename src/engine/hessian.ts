/**
 * Second order: Hessian-vector products and Hessians of a scalar, both forward-over-reverse. The gradient is a graph
 * (`transform` grad), so its JVP is the HVP (no Hessian formed, about the cost of two gradients) and its forward-mode
 * Jacobian is the Hessian (one vectorized pass per chunk of basis vectors, size-guarded like any Jacobian).
 */
import type { BatchOptions, HessianResult, HvpResult, RunOptions, Tensors } from '../engine.types.js';
import { fail, fmtShape } from '../errors.js';
import { engineCore } from './core.js';
import { LruCache, hashGraph, tensorsSignature } from '../graph/hash.js';
import { inferAll, inputMetasFromTensors } from '../graph/infer.js';
import { compileCached, freezeGraph } from '../graph/plan.js';
import type { Tensor } from '../tensor/tensor.js';
import { buildJvp, tangentName } from '../autodiff/jvp.js';
import { batchSize, checkBatched, memberMetas, runBatched } from './batched.js';
import { wireConstantBytes } from '../graph/validate.js';
import type { Graph, ValueInfo } from '../graph/types.js';
import { BYTES_PER_ELEMENT } from '../tensor/dtype.js';
import { numel } from '../tensor/tensor.js';
import { DEFAULT_MEMORY_BUDGET_BYTES, jacobianWithReport, requireFloat, tooLarge } from './jacobian.js';
import { concreteInputs, shareableValues, wantedOutputs } from '../autodiff/linear_plan.js';
import { innerOptions, tensorSpecs, type EngineCore } from './linear.js';
import { nameMap, own } from '../graph/names.js';

function lookup(values: Record<string, ValueInfo>, name: string, path: string, role: string): ValueInfo {
  const v = Object.prototype.hasOwnProperty.call(values, name) ? values[name] : undefined;
  if (v === undefined) fail('UNKNOWN_VALUE', `${path}: ${role} "${name}" names no value in the graph`, path);
  return v;
}

/** `of` must be one floating-point element (API.md NOT_SCALAR). Shared with gradcheck. */
export function checkScalarOf(values: Record<string, ValueInfo>, of: string): ValueInfo {
  const v = lookup(values, of, 'of', 'of');
  if (numel(v.shape) !== 1) {
    fail('NOT_SCALAR', `of "${of}" has shape ${fmtShape(v.shape)} (${numel(v.shape)} elements); it must have exactly one element`, 'of');
  }
  requireFloat(v, of, 'of', 'of');
  return v;
}

export function checkWrt(values: Record<string, ValueInfo>, wrt: readonly string[], field = 'wrt'): ValueInfo[] {
  return wrt.map((n, i) => {
    const v = lookup(values, n, `${field}[${i}]`, 'wrt');
    requireFloat(v, n, `${field}[${i}]`, 'wrt');
    return v;
  });
}

interface GradGraph { g: Graph; grads: string[]; shared: string[]; wanted: string[] }

/**
 * Symbolic grad graphs by (graph, of, wrt): an optimizer loop asking for HVPs pays for the transform once. An entry
 * holds the request's wire constants (b64 strings of up to the body limit), so the cache is bounded by their bytes too.
 */
export const gradGraphs = new LruCache<GradGraph>(32, 1 << 28, (e) => wireConstantBytes(e.g));

/** The grad graph with the original outputs it computes identically appended, so one pass also yields `outputs`. */
function gradGraph(core: EngineCore, graph: Graph, of: string, wrt: string[]): GradGraph {
  const key = `${hashGraph(graph)}|${JSON.stringify([of, wrt])}`;
  const hit = gradGraphs.get(key);
  if (hit) return hit;
  const made = buildGradGraph(core, graph, of, wrt);
  freezeGraph(made.g);
  gradGraphs.set(key, made);
  return made;
}

function buildGradGraph(core: EngineCore, graph: Graph, of: string, wrt: string[]): GradGraph {
  const g = core.transform(graph, { transform: 'grad', of, wrt });
  const grads = wrt.map((w) => `grad:${w}`);
  const wanted = wantedOutputs(graph, [of]);
  const shared = shareableValues(graph, g, wanted).filter((n) => !grads.includes(n));
  const outs = [...(g.outputs ?? grads)];
  for (const n of shared) if (!outs.includes(n)) outs.push(n);
  return { g: { ...g, outputs: outs }, grads, shared, wanted };
}

async function collectOutputs(core: EngineCore, graph: Graph, inputs: Tensors, wanted: string[], have: Tensors, opts: RunOptions): Promise<Tensors> {
  const missing = wanted.filter((n) => !Object.hasOwn(have, n));
  const extra: Tensors = missing.length > 0 ? (await core.evaluate(graph, inputs, missing, opts)).outputs : nameMap();
  const out: Tensors = nameMap();
  for (const n of wanted) out[n] = own(have, n) ?? own(extra, n)!;
  return out;
}

export async function hvpWith(core: EngineCore, graph: Graph, inputs: Tensors, of: string, vectors: Tensors, opts: BatchOptions = {}): Promise<HvpResult> {
  const shapes = core.shapes(graph, tensorSpecs(inputs));
  checkScalarOf(shapes.values, of);
  const names = Object.keys(vectors);
  if (names.length === 0) fail('INVALID_REQUEST', 'vectors: give at least one {input: vector}', 'vectors');
  const batched = opts.batched === true;
  const B = batched ? batchSize(vectors, 'vectors', 'hvp') : 0;
  for (const n of names) {
    const path = `vectors.${n}`;
    const v = lookup(shapes.values, n, path, 'vector for');
    requireFloat(v, n, path, 'wrt');
    if (!Object.prototype.hasOwnProperty.call(graph.inputs ?? {}, n)) {
      // forward-over-reverse seeds tangents, and tangents live on graph inputs
      fail('UNKNOWN_VALUE', `${path}: "${n}" is a node, not a graph input; Hessian-vector products are taken with respect to graph inputs`, path);
    }
    const t = vectors[n]!;
    if (batched) {
      checkBatched(t, v, path, 'vector');
      continue;
    }
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      fail('SHAPE_MISMATCH', `${path}: the vector has shape ${fmtShape(t.shape)} but "${n}" has shape ${fmtShape(v.shape)}`, path);
    }
    if (t.dtype !== v.datatype) {
      fail('DATATYPE_MISMATCH', `${path}: the vector is ${t.dtype} but "${n}" is ${v.datatype}`, path);
    }
  }
  const { g, grads, shared, wanted } = gradGraph(core, concreteInputs(graph, inputs), of, names);
  const stats = { nodes: 0, flops: 0, bytes: 0 };
  // The node limit is on the request's graph; its grad graph is a few times larger by construction (a chain of
  // 6,000 nodes within the limit has a grad graph of 18,000), so only the other limits apply to it.
  const { maxNodes: _requestGraphLimit, ...derivedOpts } = opts;
  if (batched) return batchedHvp(core, graph, inputs, vectors, B, { g, grads, shared, wanted }, derivedOpts);
  const res = await core.jvp(g, inputs, { ...vectors }, grads, derivedOpts);
  const gradients: Tensors = nameMap();
  const hvp: Tensors = nameMap();
  names.forEach((n, i) => {
    gradients[n] = res.outputs[grads[i]!]!;
    hvp[n] = res.tangents[grads[i]!]!;
  });
  const have: Tensors = nameMap();
  for (const n of shared) if (own(res.outputs, n) !== undefined) have[n] = res.outputs[n]!;
  const outputs = await collectOutputs(core, graph, inputs, wanted, have, innerOptions(opts, stats));
  return { outputs, gradients, hvp };
}

interface HvpDerived { graph: Graph; key: string; plain: string[]; tangents: string[] }

/** JVP graphs of gradient graphs, keeping the gradients and shared forward values as outputs. */
const hvpGraphs = new LruCache<HvpDerived>(32, 1 << 28, (e) => wireConstantBytes(e.graph));

/** B Hessian-vector products: the JVP of the gradient graph with its tangents batched (batched.ts). */
async function batchedHvp(core: EngineCore, graph: Graph, inputs: Tensors, vectors: Tensors, B: number, gg: GradGraph, opts: BatchOptions): Promise<HvpResult> {
  const names = Object.keys(vectors);
  const c = compileCached(gg.g);
  const key = `${c.id}|${tensorsSignature(inputs)}|hvp|${tensorsSignature(memberMetas(vectors))}`;
  let d = hvpGraphs.get(key);
  if (d === undefined) {
    const metas = inferAll(c, inputMetasFromTensors(c, inputs));
    const keep = [...(gg.g.outputs ?? gg.grads)];
    const b = buildJvp(c, metas, names, names.map((n) => `vectors.${n}`), gg.grads, keep);
    d = { graph: freezeGraph(b.graph), key, plain: keep.map((n) => b.rename.get(n) ?? n), tangents: gg.grads.map(tangentName) };
    hvpGraphs.set(key, d);
  }
  const seeds: Tensors = nameMap();
  for (const n of names) seeds[tangentName(n)] = vectors[n]!;
  const labels = Object.fromEntries(names.map((n, i) => [d!.tangents[i]!, `hvp.${n}`]));
  const run = await runBatched(core, { derived: d.graph, key: d.key, inputs, seeds, B, plain: d.plain, batched: d.tangents, labels, what: 'batched hvp' }, opts);
  const keep = [...(gg.g.outputs ?? gg.grads)];
  const value = (n: string): Tensor => run.plain[d.plain[keep.indexOf(n)]!]!;
  const gradients: Tensors = nameMap();
  const hvp: Tensors = nameMap();
  names.forEach((n, i) => {
    gradients[n] = value(gg.grads[i]!);
    hvp[n] = run.batched[d.tangents[i]!]!;
  });
  const have: Tensors = nameMap();
  for (const n of gg.shared) have[n] = value(n);
  const stats = { nodes: 0, flops: 0, bytes: 0 };
  const outputs = await collectOutputs(core, graph, inputs, gg.wanted, have, innerOptions(opts, stats));
  return { outputs, gradients, hvp, batching: run.report };
}

export async function hessianWith(core: EngineCore, graph: Graph, inputs: Tensors, of: string, wrt: string[], opts: RunOptions = {}): Promise<HessianResult> {
  const shapes = core.shapes(graph, tensorSpecs(inputs));
  checkScalarOf(shapes.values, of);
  const infos = checkWrt(shapes.values, wrt);
  let bytes = 0;
  for (const a of infos) for (const b of infos) bytes += numel(a.shape) * numel(b.shape) * BYTES_PER_ELEMENT[a.datatype];
  const budget = opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;
  if (bytes + shapes.peakBytes > budget) {
    tooLarge('hessian', `of ${of} with respect to ${wrt.map((w, i) => `${w} ${fmtShape(infos[i]!.shape)}`).join(', ')}`,
      bytes, shapes.peakBytes, budget, '`hvp` (one Hessian-vector product per vector, no Hessian formed)');
  }
  const { g, grads, shared, wanted } = gradGraph(core, concreteInputs(graph, inputs), of, wrt);
  const { result } = await jacobianWithReport(core, g, inputs, grads, wrt, 'forward', opts, {
    what: 'hessian', wayOut: '`hvp` (one Hessian-vector product per vector, no Hessian formed)',
  });
  const hessians: Record<string, Tensors> = nameMap();
  wrt.forEach((wi, i) => {
    hessians[wi] = nameMap();
    for (const wj of wrt) hessians[wi]![wj] = result.jacobians[grads[i]!]![wj]!;
  });
  const have: Tensors = nameMap();
  for (const n of shared) if (own(result.outputs, n) !== undefined) have[n] = result.outputs[n]!;
  const stats = { nodes: 0, flops: 0, bytes: 0 };
  const outputs = await collectOutputs(core, graph, inputs, wanted, have, innerOptions(opts, stats));
  return { outputs, hessians };
}

/** The library and engine entries (Engine.hvp, Engine.hessian). */
export async function hvp(graph: Graph, inputs: Tensors, of: string, vectors: Tensors, opts?: BatchOptions): Promise<HvpResult> {
  return hvpWith(engineCore, graph, inputs, of, vectors, opts);
}

export async function hessian(graph: Graph, inputs: Tensors, of: string, wrt: string[], opts?: RunOptions): Promise<HessianResult> {
  return hessianWith(engineCore, graph, inputs, of, wrt, opts);
}
