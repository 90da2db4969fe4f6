/**
 * Splits a derivative graph (the output of `transform` vjp/jvp) into the part that does not depend on the seed inputs
 * (cotangents or tangents) and the part that does. The first part is the forward pass plus every local derivative; it
 * is evaluated once. The second part is linear in the seed and is all that has to run per basis vector, which is what
 * makes a Jacobian cost one forward pass plus n cheap linear passes instead of n full passes.
 */
import { seedDependent, shareableValues } from '../autodiff/linear_plan.js';
import type { Engine, ExecStats, RunOptions, Tensors } from '../engine.types.js';
import type { Graph, InputSpec, ValueInfo, WireTensor } from '../graph/types.js';
import type { Tensor } from '../tensor/tensor.js';
import { nameMap } from '../graph/names.js';

/** The engine functions the derivative library is built on; passed in so nothing here imports src/index.ts. */
export type EngineCore = Pick<Engine, 'evaluate' | 'grad' | 'vjp' | 'jvp' | 'transform' | 'shapes'>;

export interface LinearPlan {
  /** Seed inputs + boundary inputs -> derivative outputs; every node depends on a seed. */
  graph: Graph;
  seeds: string[];
  /** Tensors for every non-seed input of `graph` (boundary values from the primal pass and the caller's inputs). */
  fixed: Tensors;
  /** Derivative outputs in request order. */
  outputs: string[];
  /** Derivative outputs that do not depend on the seed (zeros in practice): computed once. */
  constant: Tensors;
  /** Values of the original graph that the primal pass produced on the way (see `shareableValues`). */
  primal: Tensors;
}

function specOf(t: Tensor): ValueInfo {
  return { shape: [...t.shape], datatype: t.dtype };
}

export function tensorSpecs(tensors: Tensors): Record<string, ValueInfo> {
  const out: Record<string, ValueInfo> = nameMap();
  for (const [k, t] of Object.entries(tensors)) out[k] = specOf(t);
  return out;
}

/** Run options for the many inner passes: cancellation and limits, but admission and metrics are reported once. */
export function innerOptions(opts: RunOptions, stats: ExecStats): RunOptions {
  const inner: RunOptions = {
    onExecuted: (s) => {
      stats.nodes += s.nodes;
      stats.flops += s.flops;
      stats.bytes += s.bytes;
      // passes run one after another, so the call's peak is the largest pass's peak
      if (s.peakBytes !== undefined) stats.peakBytes = Math.max(stats.peakBytes ?? 0, s.peakBytes);
    },
  };
  if (opts.signal !== undefined) inner.signal = opts.signal;
  if (opts.maxTensorElements !== undefined) inner.maxTensorElements = opts.maxTensorElements;
  return inner;
}

function pick<T>(rec: Record<string, T> | undefined, names: Iterable<string>): Record<string, T> {
  const out: Record<string, T> = nameMap();
  if (!rec) return out;
  for (const n of names) if (Object.prototype.hasOwnProperty.call(rec, n)) out[n] = rec[n]!;
  return out;
}

/**
 * Evaluates the seed-independent part of `derived` once and returns the linear remainder. `wanted` are names of
 * `original` whose values the caller also needs; those that `derived` computes identically come back in `primal`.
 */
export async function planLinear(
  core: EngineCore,
  original: Graph,
  derived: Graph,
  seeds: readonly string[],
  inputs: Tensors,
  wanted: readonly string[],
  opts: RunOptions,
): Promise<LinearPlan> {
  const dep = seedDependent(derived, seeds);
  const outputs = derived.outputs ?? [];
  const linearNodes = derived.nodes.filter((n) => dep.has(n.name));
  const declared = derived.inputs ?? {};
  const constants = derived.constants ?? {};
  const nodeNames = new Set(derived.nodes.map((n) => n.name));

  // Values the linear part reads that the seed does not touch: constants stay constants, inputs come from the
  // caller, nodes are computed by the primal pass.
  const boundaryNodes = new Set<string>();
  const boundaryInputs = new Set<string>();
  const usedConstants = new Set<string>();
  const classify = (name: string): void => {
    if (dep.has(name)) return;
    if (nodeNames.has(name)) boundaryNodes.add(name);
    else if (Object.prototype.hasOwnProperty.call(constants, name)) usedConstants.add(name);
    else boundaryInputs.add(name);
  };
  for (const n of linearNodes) n.inputs.forEach(classify);
  const constantOutputs = outputs.filter((o) => !dep.has(o));
  for (const o of constantOutputs) {
    if (nodeNames.has(o)) boundaryNodes.add(o);
    else if (Object.prototype.hasOwnProperty.call(constants, o)) usedConstants.add(o);
    else boundaryInputs.add(o);
  }
  const shared = shareableValues(original, derived, wanted).filter((n) => !dep.has(n));

  const primalOutputs = [...new Set([...boundaryNodes, ...shared.filter((n) => nodeNames.has(n))])];
  const primalInputNames = Object.keys(declared).filter((n) => !seeds.includes(n));
  let primalValues: Tensors = nameMap();
  if (primalOutputs.length > 0) {
    const primalGraph: Graph = {
      inputs: pick(declared, primalInputNames),
      constants,
      nodes: derived.nodes.filter((n) => !dep.has(n.name)),
      outputs: primalOutputs,
    };
    const res = await core.evaluate(primalGraph, pick(inputs, primalInputNames), primalOutputs, opts);
    primalValues = res.outputs;
  }
  const valueOf = (name: string): Tensor | undefined => {
    if (Object.prototype.hasOwnProperty.call(primalValues, name)) return primalValues[name];
    if (Object.prototype.hasOwnProperty.call(inputs, name)) return inputs[name];
    return undefined;
  };

  const fixed: Tensors = nameMap();
  const graphInputs: Record<string, InputSpec> = nameMap();
  for (const s of seeds) graphInputs[s] = declared[s] ?? {};
  for (const name of [...boundaryNodes, ...boundaryInputs]) {
    const t = valueOf(name);
    if (t === undefined) continue; // a constant output the caller did not provide; reported below
    fixed[name] = t;
    graphInputs[name] = { shape: [...t.shape], datatype: t.dtype };
  }
  const constant: Tensors = nameMap();
  const constOut: Record<string, WireTensor> = nameMap();
  for (const o of constantOutputs) {
    const t = valueOf(o);
    if (t !== undefined) constant[o] = t;
    else if (Object.prototype.hasOwnProperty.call(constants, o)) constOut[o] = constants[o]!;
  }
  const linearOutputs = outputs.filter((o) => dep.has(o));
  const graph: Graph = {
    inputs: graphInputs,
    constants: { ...pick(constants, usedConstants), ...constOut },
    nodes: linearNodes,
    outputs: [...linearOutputs, ...Object.keys(constOut)],
  };
  const primal: Tensors = nameMap();
  for (const n of shared) {
    const t = valueOf(n);
    if (t !== undefined) primal[n] = t;
  }
  return { graph, seeds: [...seeds], fixed, outputs: [...outputs], constant, primal };
}
