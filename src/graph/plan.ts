/**
 * Execution plans: the nodes a request's outputs need, in dependency order, with each intermediate's last use and the
 * cost estimate. Plans are cached by (graph hash, input shapes and datatypes, requested outputs) in a bounded LRU, so
 * a repeated call skips validation, inference and planning.
 */
import type { CostEstimate } from '../engine.types.js';
import type { Graph } from './types.js';
import { estimateCost, type PlannedStep } from './cost.js';
import { LruCache, hashGraph, tensorsSignature } from './hash.js';
import { inferAll, inputMetasFromTensors, type Metas, type TensorLike } from './infer.js';
import { compileGraph, constantBytes, type CompiledGraph } from './validate.js';

export interface Plan {
  compiled: CompiledGraph;
  metas: Metas;
  outputs: string[];
  steps: PlannedStep[];
  /** inputs and constants the plan reads */
  leaves: string[];
  cost: CostEstimate;
}

/** Compiled graphs hold their decoded constants: bounded by count and by those bytes. */
const compiledCache = new LruCache<CompiledGraph>(256, 1 << 30, constantBytes);
const planCache = new LruCache<Plan>(512, 1 << 30, (p) => constantBytes(p.compiled));

export const caches = { compiled: compiledCache, plans: planCache };

/**
 * Hashing is a walk over the whole graph, constants included (a 4096x4096 weight is ~90 MB of b64). A frozen graph
 * (Object.freeze, deeply: e.g. a model repository's graph) cannot change, so its hash is remembered by identity.
 */
const frozenHashes = new WeakMap<Graph, string>();

/** Freezes a graph the engine built and keeps (a cached derivative graph), so each use skips re-hashing it. */
export function freezeGraph<T>(root: T): T {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || Object.isFrozen(v) || ArrayBuffer.isView(v)) continue;
    Object.freeze(v);
    for (const x of Object.values(v as Record<string, unknown>)) stack.push(x);
  }
  return root;
}

export function graphHash(graph: Graph): string {
  if (!Object.isFrozen(graph)) return hashGraph(graph);
  let h = frozenHashes.get(graph);
  if (h === undefined) {
    h = hashGraph(graph);
    frozenHashes.set(graph, h);
  }
  return h;
}

export function compileCached(graph: Graph): CompiledGraph {
  const hash = graphHash(graph);
  let c = compiledCache.get(hash);
  if (c === undefined) {
    c = compileGraph(graph, hash);
    compiledCache.set(hash, c);
  }
  return c;
}

/** Steps needed for `outputs`, dependencies first, with free-at-last-use lists. */
export function buildSteps(c: CompiledGraph, outputs: readonly string[]): { steps: PlannedStep[]; leaves: string[] } {
  const needed = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (needed.has(v)) continue;
    needed.add(v);
    const n = c.nodes.get(v);
    if (n) stack.push(...n.inputs);
  }
  const order = c.order.filter((n) => needed.has(n.name));
  const lastUse = new Map<string, number>();
  order.forEach((n, k) => n.inputs.forEach((i) => lastUse.set(i, k)));
  const keep = new Set(outputs);
  const steps: PlannedStep[] = order.map((node) => ({ node, free: [] }));
  for (const [v, k] of lastUse) {
    if (c.nodes.has(v) && !keep.has(v) && !steps[k]!.free.includes(v)) steps[k]!.free.push(v);
  }
  // a node nobody reads and nobody asked for (only possible for duplicates) is freed right away
  steps.forEach((s, k) => {
    if (!lastUse.has(s.node.name) && !keep.has(s.node.name)) steps[k]!.free.push(s.node.name);
  });
  const leaves = [...needed].filter((v) => !c.nodes.has(v));
  return { steps, leaves };
}

export function planFromMetas(c: CompiledGraph, inputMetas: Metas, outputs: readonly string[]): Plan {
  const metas = inferAll(c, inputMetas);
  const { steps, leaves } = buildSteps(c, outputs);
  return { compiled: c, metas, outputs: [...outputs], steps, leaves, cost: estimateCost(steps, metas, leaves) };
}

/** The cached plan for these input shapes/datatypes and outputs (validating and inferring on a miss). */
export function planFor(c: CompiledGraph, inputs: Record<string, TensorLike>, outputs: readonly string[], inputsPrefix = 'inputs'): Plan {
  if (typeof inputs !== 'object' || inputs === null) return planFromMetas(c, inputMetasFromTensors(c, inputs, inputsPrefix), outputs);
  const key = `${c.id}|${tensorsSignature(inputs)}|${JSON.stringify(outputs)}|${inputsPrefix}`;
  let p = planCache.get(key);
  if (p === undefined) {
    p = planFromMetas(c, inputMetasFromTensors(c, inputs, inputsPrefix), outputs);
    planCache.set(key, p);
  }
  return p;
}
