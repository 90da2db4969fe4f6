/**
 * Builds a derivative graph on top of a validated forward graph. The Emitter handed to VJP/JVP rules appends nodes
 * whose shape and datatype come from the op's own `infer`, so a rule that builds an ill-typed node fails at transform
 * time, naming the rule. The result is an ordinary wire Graph (API.md) that can be returned, evaluated or transformed
 * again.
 */
import { GradserveError, fail } from '../errors.js';
import type { Metas } from '../graph/infer.js';
import { inferNode } from '../graph/infer.js';
import { stableStringify } from '../graph/hash.js';
import type { Graph, InputSpec, NodeSpec, WireTensor } from '../graph/types.js';
import { compileGraph, type CompiledGraph } from '../graph/validate.js';
import { getOp } from '../ops/registry.js';
import { inputArity, type Emitter, type Ref, type ValueMeta } from '../ops/types.js';
import type { DType } from '../tensor/dtype.js';
import { fmtSymShape } from '../tensor/shape.js';

function wireScalar(value: number, dtype: DType): WireTensor {
  let v: number | boolean | string = value;
  if (dtype === 'BOOL') v = value !== 0;
  else if (Number.isNaN(value)) v = 'NaN';
  else if (value === Infinity) v = 'Infinity';
  else if (value === -Infinity) v = '-Infinity';
  return { shape: [], datatype: dtype, data: [v] };
}

export class GraphWriter {
  readonly metas: Metas;
  private readonly names: Set<string>;
  private readonly newInputs: Record<string, InputSpec> = {};
  private readonly newConstants: Record<string, WireTensor> = {};
  private readonly newNodes: NodeSpec[] = [];
  private readonly scalars = new Map<string, Ref>();
  private counter = 0;

  /**
   * Ops are pure, so a node with the same op, inputs and attrs as an existing one is that node (common
   * subexpressions): derivatives of derivatives otherwise rebuild the same local derivatives again and again.
   */
  private readonly memo = new Map<string, string>();

  constructor(readonly base: CompiledGraph, metas: Metas) {
    this.metas = new Map(metas);
    this.names = new Set(base.kinds.keys());
    for (const n of base.graph.nodes) this.memo.set(memoKey(n.op, n.inputs, n.attrs), n.name);
  }

  ref(name: string): Ref {
    const m = this.metas.get(name);
    if (m === undefined) throw new GradserveError('INTERNAL', `derivative graph: no value "${name}"`);
    return { name, shape: m.shape, dtype: m.dtype };
  }

  private claim(name: string, path?: string): void {
    if (this.names.has(name)) {
      fail('DUPLICATE_NAME', `the derivative graph needs the name "${name}", which the graph already uses; rename that value`, path);
    }
    this.names.add(name);
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  addInput(name: string, meta: ValueMeta, path?: string): Ref {
    this.claim(name, path);
    this.newInputs[name] = { shape: [...meta.shape], datatype: meta.dtype };
    this.metas.set(name, { shape: [...meta.shape], dtype: meta.dtype });
    return this.ref(name);
  }

  /** Appends a node; `name` is given for the graph's named outputs, else a fresh `<prefix><k>`. */
  node(prefix: string, op: string, inputs: Ref[], attrs: Record<string, unknown> | undefined, name?: string, path?: string): Ref {
    const def = getOp(op);
    if (def === undefined) throw new GradserveError('INTERNAL', `derivative rule at ${prefix} uses unknown op "${op}"`);
    const key = memoKey(op, inputs.map((r) => r.name), attrs);
    if (name === undefined) {
      const same = this.memo.get(key);
      if (same !== undefined) return this.ref(same);
    }
    if (name !== undefined) this.claim(name, path);
    const nodeName = name ?? this.fresh(prefix);
    const parsed = def.attrs.safeParse(attrs ?? {});
    if (!parsed.success) {
      // Attrs computed from sizes (a broadcast shape, a merged dim) can leave the exact integers on a huge zero-size
      // value: a limit of the request, not a broken rule.
      const huge = hugeNumber(attrs);
      if (huge !== undefined) {
        fail('TOO_LARGE', `a derivative of this graph needs "${op}" with the size ${huge}, over the largest dimension 2^53 - 1`);
      }
      throw new GradserveError('INTERNAL', `derivative rule at ${prefix} built "${op}" with invalid attrs ${JSON.stringify(attrs)}: ${parsed.error.message}`);
    }
    const arity = inputArity(def);
    if (inputs.length < arity.min || inputs.length > arity.max) {
      throw new GradserveError('INTERNAL', `derivative rule at ${prefix} gave "${op}" ${inputs.length} inputs, it takes ${arity.min === arity.max ? arity.max : `${arity.min} to ${arity.max}`}`);
    }
    let meta: ValueMeta;
    try {
      meta = inferNode({ name: nodeName, op: def, attrs: parsed.data, path: nodeName }, inputs.map((r) => ({ shape: r.shape, dtype: r.dtype })));
    } catch (e) {
      if (e instanceof GradserveError && e.code === 'TOO_LARGE') throw e;
      const shapes = inputs.map((r) => `${fmtSymShape(r.shape)} ${r.dtype}`).join(', ');
      throw new GradserveError('INTERNAL', `derivative rule at ${prefix} built an ill-typed "${op}" node on ${shapes}: ${(e as Error).message}`, { cause: e });
    }
    const spec: NodeSpec = { name: nodeName, op, inputs: inputs.map((r) => r.name) };
    if (attrs !== undefined && Object.keys(attrs).length > 0) spec.attrs = attrs;
    this.newNodes.push(spec);
    this.metas.set(nodeName, meta);
    if (!this.memo.has(key)) this.memo.set(key, nodeName);
    return { name: nodeName, shape: meta.shape, dtype: meta.dtype };
  }

  scalar(value: number, dtype: DType): Ref {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : String(value)}`;
    const hit = this.scalars.get(key);
    if (hit) return hit;
    const name = this.fresh(`const/${key}/`);
    this.names.add(name);
    this.newConstants[name] = wireScalar(value, dtype);
    this.metas.set(name, { shape: [], dtype });
    const r: Ref = { name, shape: [], dtype };
    this.scalars.set(key, r);
    return r;
  }

  emitter(prefix: string): Emitter {
    return {
      op: (op, inputs, attrs) => this.node(prefix, op, inputs, attrs),
      scalar: (value, dtype) => this.scalar(value, dtype),
    };
  }

  /** The forward graph plus everything appended, keeping only what `outputs` and `keep` need (inputs all stay). */
  finish(outputs: string[], keep: readonly string[] = []): Graph {
    const g = this.base.graph;
    const allNodes = [...g.nodes, ...this.newNodes];
    const byName = new Map(allNodes.map((n) => [n.name, n]));
    const needed = new Set<string>();
    const stack = [...outputs, ...keep];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (needed.has(v)) continue;
      needed.add(v);
      const n = byName.get(v);
      if (n) stack.push(...n.inputs);
    }
    const constants: Record<string, WireTensor> = {};
    for (const [k, v] of Object.entries({ ...(g.constants ?? {}), ...this.newConstants })) if (needed.has(k)) constants[k] = v;
    const out: Graph = {
      inputs: { ...(g.inputs ?? {}), ...this.newInputs },
      nodes: allNodes.filter((n) => needed.has(n.name)),
      outputs,
    };
    if (Object.keys(constants).length > 0) out.constants = constants;
    return out;
  }
}

/** A number in `attrs` (searched through lists) past 2^53 - 1 in magnitude. */
function hugeNumber(attrs: Record<string, unknown> | undefined): number | undefined {
  const stack: unknown[] = Object.values(attrs ?? {});
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number' && Math.abs(v) > Number.MAX_SAFE_INTEGER) return v;
    if (Array.isArray(v)) stack.push(...v);
  }
  return undefined;
}

function memoKey(op: string, inputs: readonly string[], attrs: Record<string, unknown> | undefined): string {
  const a = attrs === undefined || Object.keys(attrs).length === 0 ? '' : stableStringify(attrs);
  return JSON.stringify([op, inputs, a]);
}

/** Shapes agree where both are known (symbolic transforms may know a dim on one side only). */
export function compatibleShapes(a: readonly (number | null)[], b: readonly (number | null)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === null || b[i] === null || d === b[i]);
}

export interface Reserved {
  c: CompiledGraph;
  metas: Metas;
  /** old node name -> new name, for nodes that had to give up a name */
  rename: Map<string, string>;
}

/**
 * Frees `names` for the derivative graph's outputs. A transform of a transformed graph meets its own naming again
 * (the grad of a graph that already has a node `grad:w`): such nodes are renamed `<name>~<k>` inside the new graph, which
 * does not expose them. Inputs and constants keep their names (a clash is DUPLICATE_NAME when the writer claims it).
 */
export function reserveNames(c: CompiledGraph, metas: Metas, names: readonly string[]): Reserved {
  const clash = names.filter((n) => c.kinds.get(n) === 'node');
  if (clash.length === 0) return { c, metas, rename: new Map() };
  const rename = new Map<string, string>();
  for (const n of clash) {
    let k = 1;
    while (c.kinds.has(`${n}~${k}`) || names.includes(`${n}~${k}`)) k++;
    rename.set(n, `${n}~${k}`);
  }
  const r = (s: string): string => rename.get(s) ?? s;
  const g: Graph = {
    ...c.graph,
    nodes: c.graph.nodes.map((n) => ({ ...n, name: r(n.name), inputs: n.inputs.map(r) })),
  };
  if (c.graph.outputs !== undefined) g.outputs = c.graph.outputs.map(r);
  return { c: compileGraph(g, undefined, c), metas: new Map([...metas].map(([k, v]) => [r(k), v])), rename };
}
