/**
 * The graph analyses behind splitting a derivative graph (the output of `transform` vjp/jvp) into the part that does
 * not depend on the seed inputs (cotangents or tangents) and the part that does: dependency order, which values depend
 * on a seed, which values a derivative graph computes exactly as the original does. Pure graph -> data; the split
 * itself, which evaluates the seed-independent part, is src/engine/linear.ts.
 */
import type { Tensors } from '../engine.types.js';
import type { Graph, InputSpec, NodeSpec } from '../graph/types.js';

/** Nodes in dependency order (Kahn). The engine validated the graph, so there is no cycle to report. */
export function topoNodes(graph: Graph): NodeSpec[] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const indeg = new Map<string, number>();
  const users = new Map<string, string[]>();
  for (const n of graph.nodes) {
    let d = 0;
    for (const i of n.inputs) {
      if (!byName.has(i)) continue;
      d++;
      const u = users.get(i);
      if (u) u.push(n.name);
      else users.set(i, [n.name]);
    }
    indeg.set(n.name, d);
  }
  const queue = graph.nodes.filter((n) => indeg.get(n.name) === 0).map((n) => n.name);
  const out: NodeSpec[] = [];
  for (let q = 0; q < queue.length; q++) {
    const name = queue[q]!;
    out.push(byName.get(name)!);
    for (const u of users.get(name) ?? []) {
      const d = indeg.get(u)! - 1;
      indeg.set(u, d);
      if (d === 0) queue.push(u);
    }
  }
  return out;
}

/** Names (inputs and nodes) whose value depends on any of `seeds`. */
export function seedDependent(graph: Graph, seeds: readonly string[]): Set<string> {
  const dep = new Set(seeds);
  for (const n of topoNodes(graph)) if (n.inputs.some((i) => dep.has(i))) dep.add(n.name);
  return dep;
}

/** What `outputs` of a derivative result holds: graph.outputs (else the sinks, as the engine does) plus `of`. */
export function wantedOutputs(graph: Graph, of: readonly string[]): string[] {
  let outs = graph.outputs;
  if (outs === undefined) {
    const consumed = new Set(graph.nodes.flatMap((n) => n.inputs));
    outs = graph.nodes.filter((n) => !consumed.has(n.name)).map((n) => n.name);
  }
  return [...new Set([...outs, ...of])];
}

/**
 * The graph with every declared input pinned to the shape and datatype of its tensor. The symbolic transforms need
 * each input's rank, which a graph may leave undeclared; the caller has already checked the tensors against the
 * declarations, and concrete shapes only make the derivative graph more specific.
 */
export function concreteInputs(graph: Graph, inputs: Tensors): Graph {
  const declared: Record<string, InputSpec> = {};
  for (const [k, spec] of Object.entries(graph.inputs ?? {})) {
    const t = Object.prototype.hasOwnProperty.call(inputs, k) ? inputs[k] : undefined;
    declared[k] = t ? { shape: [...t.shape], datatype: t.dtype } : spec;
  }
  return { ...graph, inputs: declared };
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stable(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Names among `names` that denote the very same computation in `derived` as in `original` (same node spec, same
 * inputs recursively, same constants and declared inputs), so their values can be read from a pass over `derived`
 * instead of a second forward pass over `original`.
 */
export function shareableValues(original: Graph, derived: Graph, names: readonly string[]): string[] {
  const dNodes = new Map(derived.nodes.map((n) => [n.name, n]));
  const oNodeNames = new Set(original.nodes.map((n) => n.name));
  // In dependency order, so each node's inputs are settled before it: no recursion, whatever the depth of the graph.
  const memo = new Map<string, boolean>();
  const leaf = (name: string): boolean => {
    if (dNodes.has(name)) return false;
    const oc = original.constants?.[name];
    const dc = derived.constants?.[name];
    if (oc !== undefined || dc !== undefined) return oc !== undefined && dc !== undefined && stable(oc) === stable(dc);
    return original.inputs?.[name] !== undefined && derived.inputs?.[name] !== undefined;
  };
  const same = (name: string): boolean => {
    let ok = memo.get(name);
    if (ok === undefined) {
      ok = oNodeNames.has(name) ? false : leaf(name);
      memo.set(name, ok);
    }
    return ok;
  };
  for (const o of topoNodes(original)) {
    const d = dNodes.get(o.name);
    const ok = d !== undefined && o.op === d.op && o.inputs.length === d.inputs.length &&
      o.inputs.every((x, i) => x === d.inputs[i]) && stable(o.attrs ?? {}) === stable(d.attrs ?? {}) && o.inputs.every(same);
    memo.set(o.name, ok);
  }
  return names.filter(same);
}
