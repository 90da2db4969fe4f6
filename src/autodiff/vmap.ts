/**
 * Vectorizes a graph over a leading batch axis of chosen seed inputs (JAX's vmap). A Jacobian then costs one pass per
 * chunk of K basis vectors instead of one per vector, B cotangents / tangents / vectors of a batched vjp, jvp or hvp
 * one pass (the per-pass overhead is paid once and matmuls become real GEMMs), and per-example gradients one pass over
 * the gradient graph of one example with its forward nodes batched too.
 *
 * Every value is either batched (shape [K, ...s]) or not (shape s, shared by every member of the batch). Each op's
 * batching rule lives on its definition (`OpDef.vmap`; elementwise ops share the lifting rule below) and rewrites one
 * node given which inputs are batched; this file holds only the machinery the rules build with (the `Batcher`). An op
 * without a rule makes the whole graph unsupported, and the caller falls back to one pass per member. Shapes are
 * concrete here (the graph comes from a planned, evaluated problem). */
import type { Graph, NodeSpec, ValueInfo, WireTensor } from '../graph/types.js';
import { getOp } from '../ops/registry.js';
import type { Batcher, BatchedValue, VmapArgs } from '../ops/types.js';
import type { DType } from '../tensor/dtype.js';
import { normalizeAxis } from '../tensor/shape.js';
import { topoNodes } from './linear_plan.js';

export interface VmapResult {
  graph: Graph;
  /** Whether each output of the graph carries the batch axis. */
  batchedOutputs: Record<string, boolean>;
}

export class Unbatchable extends Error {}

/** The rule of every `elementwise` op without its own: operands lifted to a common rank, the node itself on them. */
function liftElementwise({ b, inputs }: VmapArgs): boolean {
  const rank = Math.max(...inputs.map((v) => v.shape.length));
  b.same(inputs.map((v) => (v.batched ? b.lift(v, rank) : v.name)));
  return true;
}

function normAxis(a: unknown, rank: number): number {
  const n = normalizeAxis(a as number, rank);
  if (n === undefined) throw new Unbatchable(`axis ${String(a)} out of range`);
  return n;
}

/**
 * Rewrites `graph` so each seed input takes a leading batch axis of size K. `shapes` holds the unbatched shape and
 * datatype of every value. Throws Unbatchable when an op has no batching rule.
 */
export function vmapGraph(graph: Graph, seeds: readonly string[], shapes: Record<string, ValueInfo>, K: number): VmapResult {
  const taken = new Set<string>([...Object.keys(graph.inputs ?? {}), ...Object.keys(graph.constants ?? {}), ...graph.nodes.map((n) => n.name)]);
  const nodes: NodeSpec[] = [];
  const constants: Record<string, WireTensor> = { ...(graph.constants ?? {}) };
  const vals = new Map<string, BatchedValue>();
  const info = (name: string): ValueInfo => {
    const s = shapes[name];
    if (!s) throw new Unbatchable(`no shape for "${name}"`);
    return s;
  };
  for (const name of [...Object.keys(graph.inputs ?? {}), ...Object.keys(graph.constants ?? {})]) {
    const s = info(name);
    vals.set(name, { name, batched: seeds.includes(name), shape: [...s.shape], dtype: s.datatype as DType });
  }
  let counter = 0;
  const fresh = (base: string): string => {
    let n: string;
    do n = `${base}::vmap${counter++}`; while (taken.has(n));
    taken.add(n);
    return n;
  };
  const emit = (name: string, op: string, inputs: readonly string[], attrs?: Record<string, unknown>): string => {
    nodes.push(attrs === undefined ? { name, op, inputs: [...inputs] } : { name, op, inputs: [...inputs], attrs });
    return name;
  };

  /** The Batcher bound to `node`: its own name for `out`/`same`, fresh names derived from it otherwise. */
  const batcherFor = (node: NodeSpec): Batcher => {
    const base = node.name;
    const b: Batcher = {
      K,
      out: (op, inputs, attrs) => emit(base, op, inputs, attrs),
      same: (inputs) => emit(base, node.op, inputs, node.attrs),
      tmp: (op, inputs, attrs) => emit(fresh(base), op, inputs, attrs),
      reshape: (v, shape) => emit(fresh(base), 'reshape', [v.name], { shape: [...shape] }),
      lift: (v, rank) => (v.shape.length >= rank ? v.name : b.reshape(v, [K, ...Array<number>(rank - v.shape.length).fill(1), ...v.shape])),
      tile: (v) => (v.batched ? v.name : emit(fresh(base), 'broadcast_to', [v.name], { shape: [K, ...v.shape] })),
      zeros: (dtype, shape) => {
        const c = b.scalar(0, dtype);
        return emit(fresh(base), 'broadcast_to', [c], { shape: [...shape] });
      },
      scalar: (value, dtype) => b.constant(dtype, [], [value]),
      constant: (dtype, shape, values) => {
        const c = fresh(base);
        constants[c] = { shape: [...shape], datatype: dtype, data: [...values] };
        return c;
      },
      axis: (axis, rank, dflt) => normAxis(axis === undefined || axis === null ? dflt : axis, rank),
      axes: (axes, rank) => {
        if (axes === null || axes === undefined) return Array.from({ length: rank }, (_, i) => i);
        return (typeof axes === 'number' ? [axes] : (axes as number[])).map((a) => normAxis(a, rank));
      },
      refuse: (reason) => {
        throw new Unbatchable(`${reason} (node "${base}", op "${node.op}")`);
      },
    };
    return b;
  };

  for (const node of topoNodes(graph)) {
    const ins = node.inputs.map((i) => {
      const v = vals.get(i);
      if (!v) throw new Unbatchable(`unknown value "${i}"`);
      return v;
    });
    const out = info(node.name);
    const output = { shape: [...out.shape], dtype: out.datatype as DType };
    const set = (batched: boolean): void => {
      vals.set(node.name, { name: node.name, batched, shape: output.shape, dtype: output.dtype });
    };
    if (!ins.some((v) => v.batched)) {
      nodes.push(node);
      set(false);
      continue;
    }
    const def = getOp(node.op);
    const rule = def?.vmap ?? (def?.elementwise ? liftElementwise : undefined);
    if (rule === undefined) throw new Unbatchable(`no batching rule for op "${node.op}" (node "${node.name}")`);
    set(rule.call(def, { b: batcherFor(node), inputs: ins, output, attrs: node.attrs ?? {} }));
  }

  const inputs: Record<string, { shape?: (number | null)[]; datatype?: string }> = {};
  for (const [n, spec] of Object.entries(graph.inputs ?? {})) {
    inputs[n] = seeds.includes(n) ? { shape: [K, ...info(n).shape], datatype: info(n).datatype } : spec;
  }
  const batchedOutputs: Record<string, boolean> = {};
  for (const o of graph.outputs ?? []) batchedOutputs[o] = vals.get(o)?.batched ?? false;
  return { graph: { inputs, constants, nodes, outputs: [...(graph.outputs ?? [])] }, batchedOutputs };
}
