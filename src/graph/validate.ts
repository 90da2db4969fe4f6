/**
 * Static validation of a wire graph (everything that does not depend on input tensors) and its topological order.
 * The result is cached by graph hash, so a repeated graph pays for this once.
 *
 * Errors carry `errors[].path` into the HTTP request body (`graph.nodes[2].inputs[1]`). Choices made here:
 * - a node with the wrong number of inputs is INVALID_REQUEST (400, a malformed request: the arity is part of the
 *   op's request schema) at `graph.nodes[i].inputs`, naming the op's input names;
 * - attrs failing the op's zod schema or its `check` are INVALID_ATTRS at the attribute (`graph.nodes[i].attrs.axes`,
 *   one error item per failing attribute; `graph.nodes[i].attrs` when no attribute can be named), the message naming it;
 * - a graph without `outputs` outputs its sinks (nodes nothing else consumes), in node order.
 */
import { GradserveError, fail } from '../errors.js';
import { getOp } from '../ops/registry.js';
import { inputArity, type OpDef } from '../ops/types.js';
import { parseDType, type DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { decodeTensor } from '../tensor/wire.js';
import { hashGraph } from './hash.js';
import type { Graph } from './types.js';

export interface DeclaredInput {
  name: string;
  dtype?: DType;
  /** undefined: any rank; null entries: any size */
  shape?: (number | null)[];
  path: string;
}

export interface CompiledNode {
  /** position in `graph.nodes` */
  index: number;
  name: string;
  op: OpDef;
  /** attrs after the op's schema (defaults applied) */
  attrs: unknown;
  inputs: string[];
  /** `graph.nodes[i]` */
  path: string;
}

export type ValueKind = 'input' | 'constant' | 'node';

export interface CompiledGraph {
  hash: string;
  /**
   * Short and unique to this compiled instance: the prefix of the keys of what is cached per compiled graph (plans,
   * derivative graphs). A Map hashes a key on every lookup, and `hash` is up to 4 KiB of text: as the prefix of those
   * keys it made their lookups 26% of an in-process call on a small graph.
   */
  id: string;
  graph: Graph;
  inputs: Map<string, DeclaredInput>;
  constants: Map<string, Tensor>;
  nodes: Map<string, CompiledNode>;
  /** every node, dependencies first */
  order: CompiledNode[];
  /** graph.outputs, or the sinks */
  outputs: string[];
  kinds: Map<string, ValueKind>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function badRequest(path: string, message: string): never {
  fail('INVALID_REQUEST', `${path}: ${message}`, path);
}

function checkStructure(graph: unknown): asserts graph is Graph {
  if (!isRecord(graph)) badRequest('graph', 'must be an object');
  if (!Array.isArray(graph.nodes)) badRequest('graph.nodes', 'must be an array');
  graph.nodes.forEach((n: unknown, i: number) => {
    const p = `graph.nodes[${i}]`;
    if (!isRecord(n)) badRequest(p, 'must be an object {name, op, inputs, attrs?}');
    if (typeof n.name !== 'string' || n.name === '') badRequest(`${p}.name`, 'must be a non-empty string');
    if (typeof n.op !== 'string') badRequest(`${p}.op`, 'must be a string');
    if (!Array.isArray(n.inputs)) badRequest(`${p}.inputs`, 'must be an array of value names');
    n.inputs.forEach((s: unknown, j: number) => {
      if (typeof s !== 'string') badRequest(`${p}.inputs[${j}]`, 'must be a value name (string)');
    });
    if (n.attrs !== undefined && n.attrs !== null && !isRecord(n.attrs)) badRequest(`${p}.attrs`, 'must be an object');
  });
  if (graph.inputs !== undefined && !isRecord(graph.inputs)) badRequest('graph.inputs', 'must be an object');
  if (graph.constants !== undefined && !isRecord(graph.constants)) badRequest('graph.constants', 'must be an object');
  if (graph.outputs !== undefined) {
    if (!Array.isArray(graph.outputs)) badRequest('graph.outputs', 'must be an array of value names');
    graph.outputs.forEach((s: unknown, k: number) => {
      if (typeof s !== 'string') badRequest(`graph.outputs[${k}]`, 'must be a value name (string)');
    });
  }
}

function declaredInput(name: string, spec: unknown): DeclaredInput {
  const path = `graph.inputs.${name}`;
  const out: DeclaredInput = { name, path };
  if (spec === null || spec === undefined) return out;
  if (!isRecord(spec)) badRequest(path, 'must be an object {shape?, datatype?}');
  if (spec.datatype !== undefined) {
    const d = typeof spec.datatype === 'string' ? parseDType(spec.datatype) : undefined;
    if (d === undefined) badRequest(`${path}.datatype`, `unknown datatype ${JSON.stringify(spec.datatype)} (FP32, FP64, INT32, INT64, BOOL)`);
    out.dtype = d;
  }
  if (spec.shape !== undefined && spec.shape !== null) {
    if (!Array.isArray(spec.shape)) badRequest(`${path}.shape`, 'must be an array of sizes or null');
    spec.shape.forEach((d: unknown, i: number) => {
      if (d !== null && !(typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
        badRequest(`${path}.shape[${i}]`, 'must be a non-negative integer or null');
      }
    });
    out.shape = spec.shape as (number | null)[];
  }
  return out;
}

/** `axes`, `pads[0][1]` style suffix of a zod issue path. */
function attrPath(p: readonly PropertyKey[]): string {
  return p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
}

/**
 * An issue's message, with the schema's own "Invalid input" for an attribute that takes one of several forms (an int or
 * a list, a list or null) replaced by what was given and what the attribute takes (its description).
 */
function issueMessage(op: OpDef, raw: unknown, iss: { code: string; path: PropertyKey[]; message: string }): string {
  if (iss.code !== 'invalid_union' || iss.message !== 'Invalid input' || iss.path.length !== 1) return iss.message;
  const key = String(iss.path[0]);
  const described = (op.attrs as { shape?: Record<string, { description?: string }> }).shape?.[key]?.description;
  if (described === undefined) return iss.message;
  const value = isRecord(raw) ? raw[key] : undefined;
  if (value === undefined) return `required; takes ${described}`;
  let given: string;
  try {
    given = JSON.stringify(value) ?? String(value);
  } catch {
    given = typeof value === 'bigint' ? `${value}n` : String(value); // a BigInt or a cycle, from a library caller
  }
  if (given.length > 80) given = `${given.slice(0, 77)}...`;
  return `got ${given}; takes ${described}`;
}

function parseAttrs(op: OpDef, raw: unknown, node: string, path: string): unknown {
  const r = op.attrs.safeParse(raw ?? {});
  if (!r.success) {
    const msgs = r.error.issues.map((iss) => (iss.path.length ? `${iss.path.join('.')}: ${issueMessage(op, raw, iss)}` : iss.message));
    const detail = `node "${node}" (${op.name}): invalid attrs: ${msgs.join('; ')}`;
    // one item per issue, at the attribute itself (an unknown key is its own path)
    const errors = r.error.issues.map((iss) => {
      const at = iss.path.length === 0 && iss.code === 'unrecognized_keys' && iss.keys.length > 0 ? [iss.keys[0]!] : iss.path;
      return { path: `${path}.attrs${attrPath(at)}`, message: detail };
    });
    throw new GradserveError('INVALID_ATTRS', detail, { errors });
  }
  try {
    op.check?.(r.data, { node, op: op.name, path });
  } catch (e) {
    if (e instanceof GradserveError && e.code === 'INVALID_ATTRS' && e.errors === undefined) {
      fail('INVALID_ATTRS', e.message, `${path}.attrs`);
    }
    throw e;
  }
  return r.data;
}

/** Finds one cycle among nodes that Kahn's algorithm could not order; returns its values in data-flow order. */
function findCycle(remaining: Set<string>, nodes: Map<string, CompiledNode>): string[] {
  const start = remaining.values().next().value as string;
  const seenAt = new Map<string, number>();
  const path: string[] = [];
  let cur = start;
  for (;;) {
    if (seenAt.has(cur)) {
      const cyc = path.slice(seenAt.get(cur));
      cyc.reverse(); // walked consumer -> producer; report producer -> consumer
      return [...cyc, cyc[0]!];
    }
    seenAt.set(cur, path.length);
    path.push(cur);
    // every remaining node has at least one remaining input (else Kahn would have ordered it)
    cur = nodes.get(cur)!.inputs.find((i) => remaining.has(i))!;
  }
}

function topoSort(nodes: Map<string, CompiledNode>, list: CompiledNode[]): CompiledNode[] {
  const indegree = new Map<string, number>();
  const consumers = new Map<string, string[]>();
  for (const n of list) {
    let d = 0;
    for (const i of new Set(n.inputs)) {
      if (nodes.has(i)) {
        d++;
        const c = consumers.get(i);
        if (c) c.push(n.name);
        else consumers.set(i, [n.name]);
      }
    }
    indegree.set(n.name, d);
  }
  const ready = list.filter((n) => indegree.get(n.name) === 0).map((n) => n.name);
  const order: CompiledNode[] = [];
  for (let head = 0; head < ready.length; head++) {
    const name = ready[head]!;
    order.push(nodes.get(name)!);
    for (const c of consumers.get(name) ?? []) {
      const d = indegree.get(c)! - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  if (order.length < list.length) {
    const ordered = new Set(order);
    const remaining = new Set(list.filter((n) => !ordered.has(n)).map((n) => n.name));
    const cycle = findCycle(remaining, nodes);
    const first = nodes.get(cycle[0]!)!;
    const detail =
      cycle.length === 2
        ? `node "${cycle[0]}" (${first.op.name}) lists itself as an input: ${cycle.join(' -> ')}`
        : `values in the cycle: ${cycle.join(' -> ')}`;
    fail('GRAPH_CYCLE', `graph has a cycle; ${detail}`, first.path);
  }
  return order;
}

/** Compiled graphs made so far in this process: the source of CompiledGraph.id. */
let compiledCount = 0;

/**
 * Validates everything about a graph that does not depend on input tensors. `reuse`: a compiled graph whose decoded
 * constants may be shared when this graph carries the very same wire objects (a derivative graph built from it).
 */
export function compileGraph(graph: Graph, hash?: string, reuse?: CompiledGraph): CompiledGraph {
  checkStructure(graph);
  const kinds = new Map<string, ValueKind>();
  const where = new Map<string, string>();
  const claim = (name: string, kind: ValueKind, path: string): void => {
    const prev = where.get(name);
    if (prev !== undefined) fail('DUPLICATE_NAME', `value name "${name}" is used twice: ${prev} and ${path}`, path);
    kinds.set(name, kind);
    where.set(name, path);
  };

  const inputs = new Map<string, DeclaredInput>();
  for (const [name, spec] of Object.entries(graph.inputs ?? {})) {
    claim(name, 'input', `graph.inputs.${name}`);
    inputs.set(name, declaredInput(name, spec));
  }
  const constNames = Object.keys(graph.constants ?? {});
  for (const name of constNames) claim(name, 'constant', `graph.constants.${name}`);

  const nodes = new Map<string, CompiledNode>();
  const list: CompiledNode[] = [];
  graph.nodes.forEach((n, index) => {
    const path = `graph.nodes[${index}]`;
    claim(n.name, 'node', `${path}.name`);
    const op = getOp(n.op);
    if (op === undefined) fail('UNKNOWN_OP', `node "${n.name}": unknown op "${n.op}" (GET /v1/ops lists the catalogue)`, `${path}.op`);
    if (Array.isArray(op.inputs)) {
      const { min, max } = inputArity(op);
      if (n.inputs.length < min || n.inputs.length > max) {
        const count = min === max ? `${max} input${max === 1 ? '' : 's'}` : `${min} to ${max} inputs`;
        fail('INVALID_REQUEST', `node "${n.name}" (${op.name}) takes ${count} (${op.inputs.join(', ')}), got ${n.inputs.length}`, `${path}.inputs`);
      }
    } else if (n.inputs.length < op.inputs.min) {
      fail('INVALID_REQUEST', `node "${n.name}" (${op.name}) takes at least ${op.inputs.min} inputs, got ${n.inputs.length}`, `${path}.inputs`);
    }
    const attrs = parseAttrs(op, n.attrs, n.name, path);
    const cn: CompiledNode = { index, name: n.name, op, attrs, inputs: [...n.inputs], path };
    nodes.set(n.name, cn);
    list.push(cn);
  });

  list.forEach((n) => {
    n.inputs.forEach((i, j) => {
      if (!kinds.has(i)) fail('UNKNOWN_VALUE', `node "${n.name}" (${n.op.name}): input "${i}" names no input, constant or node`, `${n.path}.inputs[${j}]`);
    });
  });
  const order = topoSort(nodes, list);

  let outputs: string[];
  if (graph.outputs !== undefined) {
    graph.outputs.forEach((o, k) => {
      if (!kinds.has(o)) fail('UNKNOWN_VALUE', `graph output "${o}" names no value`, `graph.outputs[${k}]`);
    });
    outputs = [...graph.outputs];
  } else {
    const consumed = new Set(list.flatMap((n) => n.inputs));
    outputs = list.filter((n) => !consumed.has(n.name)).map((n) => n.name);
  }

  const constants = new Map<string, Tensor>();
  for (const name of constNames) {
    const wire = graph.constants![name];
    const shared = reuse !== undefined && reuse.graph.constants?.[name] === wire ? reuse.constants.get(name) : undefined;
    constants.set(name, shared ?? decodeTensor(wire, `graph.constants.${name}`));
  }

  return { hash: hash ?? hashGraph(graph), id: `#${++compiledCount}`, graph, inputs, constants, nodes, order, outputs, kinds };
}

/** `outputs` of a request checked against the graph (path `outputs[k]` or the given prefix). */
/** Bytes the wire constants of a graph hold: a b64 string's length, or 8 per number of a `data` array. */
export function wireConstantBytes(g: Graph): number {
  let n = 0;
  for (const c of Object.values(g.constants ?? {})) {
    const w = c as { b64?: unknown; data?: unknown };
    if (typeof w.b64 === 'string') n += w.b64.length;
    const stack: unknown[] = [w.data];
    while (stack.length > 0) {
      const v = stack.pop();
      if (Array.isArray(v)) for (const e of v) stack.push(e);
      else if (v !== undefined) n += 8;
    }
  }
  return n;
}

/**
 * What a cached compiled graph keeps alive: its decoded constants and the wire graph it was compiled from (whose b64
 * strings are a third larger than the bytes they decode to).
 */
export function constantBytes(c: CompiledGraph): number {
  let n = wireConstantBytes(c.graph);
  for (const t of c.constants.values()) n += t.data.byteLength;
  return n;
}

export function checkValueNames(c: CompiledGraph, names: readonly string[], prefix: string, what: string): void {
  names.forEach((n, k) => {
    if (typeof n !== 'string') fail('INVALID_REQUEST', `${prefix}[${k}] must be a value name (string)`, `${prefix}[${k}]`);
    if (!c.kinds.has(n)) fail('UNKNOWN_VALUE', `${what} "${n}" names no input, constant or node of the graph`, `${prefix}[${k}]`);
  });
}
