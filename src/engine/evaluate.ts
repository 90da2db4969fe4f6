/**
 * The forward entry points: evaluate (validate -> plan -> limits -> admission -> execute) and shapes (the same up to the
 * cost estimate, nothing executed).
 */
import { fail } from '../errors.js';
import type { EvaluateResult, RunOptions, ShapeSpec, ShapesResult, Tensors } from '../engine.types.js';
import { parseDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkLimits, checkValueElements } from '../graph/cost.js';
import { execute } from './executor.js';
import type { TensorLike } from '../graph/infer.js';
import { compileCached, planFor } from '../graph/plan.js';
import type { Graph, ValueInfo } from '../graph/types.js';
import { checkValueNames, type CompiledGraph } from '../graph/validate.js';
import { nameMap } from '../graph/names.js';

/** TOO_LARGE before any validation work is spent on an oversized graph. */
export function checkMaxNodes(graph: Graph, opts: RunOptions | undefined): void {
  const max = opts?.maxNodes;
  const n = Array.isArray((graph as { nodes?: unknown })?.nodes) ? graph.nodes.length : 0;
  if (max !== undefined && n > max) fail('TOO_LARGE', `the graph has ${n} nodes, over the limit of ${max}`, 'graph.nodes');
}

export function compileRequest(graph: Graph, opts: RunOptions | undefined): CompiledGraph {
  checkMaxNodes(graph, opts);
  return compileCached(graph);
}

/** Plans, checks limits, awaits admission, executes. `inputsPrefix` is where the tensors sit in the request. */
export async function runCompiled(c: CompiledGraph, inputs: Tensors, outputs: readonly string[], opts: RunOptions | undefined, inputsPrefix = 'inputs'): Promise<Map<string, Tensor>> {
  const plan = planFor(c, inputs, outputs, inputsPrefix);
  checkLimits(plan.steps, plan.metas, plan.cost, opts);
  if (opts?.onPlan !== undefined) {
    const returned = outputs.map((name) => {
      const m = plan.metas.get(name)!;
      return { name, shape: m.shape as number[], datatype: m.dtype };
    });
    await opts.onPlan({ ...plan.cost, outputs: returned });
  }
  return execute(plan, inputs, opts);
}

export async function evaluate(graph: Graph, inputs: Tensors, outputs?: string[], opts?: RunOptions): Promise<EvaluateResult> {
  const c = compileRequest(graph, opts);
  let outs = c.outputs;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) fail('INVALID_REQUEST', 'outputs must be a list of value names', 'outputs');
    checkValueNames(c, outputs, 'outputs', 'output');
    outs = outputs;
  }
  const r = await runCompiled(c, inputs, outs, opts);
  const out: Tensors = nameMap();
  for (const [k, t] of r) out[k] = t;
  return { outputs: out };
}

function asTensorLike(name: string, v: Tensor | ValueInfo | ShapeSpec): TensorLike {
  if ('dtype' in v && 'data' in v) return v;
  const info = v as ShapeSpec;
  const dtype = typeof info.datatype === 'string' ? parseDType(info.datatype) : undefined;
  if (dtype === undefined) fail('INVALID_REQUEST', `inputs.${name}.datatype: unknown datatype ${JSON.stringify(info.datatype)}`, `inputs.${name}.datatype`);
  if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail('INVALID_REQUEST', `inputs.${name}.shape: must be a list of non-negative integers (each at most 2^53 - 1)`, `inputs.${name}.shape`);
  }
  return { dtype, shape: info.shape };
}

export function shapes(graph: Graph, inputs: Record<string, Tensor | ValueInfo | ShapeSpec>, opts?: RunOptions): ShapesResult {
  const c = compileRequest(graph, opts);
  const likes: Record<string, TensorLike> = {};
  for (const [k, v] of Object.entries(inputs)) likes[k] = asTensorLike(k, v);
  const plan = planFor(c, likes, c.outputs);
  // Nothing is allocated here. With RunOptions (a request) the element limit applies as for evaluate; without them
  // (the engine's own size checks before a Jacobian or Hessian) huge shapes are reported, not refused.
  if (opts !== undefined) checkValueElements(c, plan.metas, opts);
  const values: Record<string, ValueInfo> = nameMap();
  for (const [name, m] of plan.metas) values[name] = { shape: m.shape as number[], datatype: m.dtype };
  return { values, flops: plan.cost.flops, peakBytes: plan.cost.peakBytes };
}
