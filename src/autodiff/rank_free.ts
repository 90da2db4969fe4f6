/**
 * Symbolic transforms of graphs whose inputs omit `shape` (API.md: an omitted shape accepts any rank). Derivative
 * rules are written with shape-polymorphic ops, but some need a rank (axes lists, transposes, matmul). So the
 * transform is built with each unshaped input given all-null dims at several ranks: when every build succeeds and
 * the graphs agree up to those inputs' declared shapes, nothing in the result depends on the rank and it is returned
 * with the shapes omitted again. Otherwise SHAPE_MISMATCH at the input asks for its shape, naming the first node that
 * needs the rank.
 */
import { GradserveError } from '../errors.js';
import { stableStringify } from '../graph/hash.js';
import type { Graph, InputSpec } from '../graph/types.js';
import type { CompiledGraph, CompiledNode } from '../graph/validate.js';
import type { RankFreeUse } from '../ops/types.js';

/**
 * Ranks tried: above every declared rank, so an unknown dim never broadcasts into a known one (at rank 1, [null] times
 * a [3] input would be [3], and the rules would treat it as concrete), and several of them, so an attr that follows
 * the rank shows up as a difference.
 */
function probeRanks(graph: Graph): number[] {
  let r = 0;
  for (const spec of Object.values(graph.inputs ?? {})) r = Math.max(r, spec.shape?.length ?? 0);
  for (const t of Object.values(graph.constants ?? {})) r = Math.max(r, Array.isArray(t.shape) ? t.shape.length : 0);
  return [r + 1, r + 2, r + 3];
}

/** How a node meets an operand of unknown rank, from its op's definition; undefined: it needs the rank. */
function rankFreeUse(n: CompiledNode): RankFreeUse | undefined {
  const { elementwise, rankFree } = n.op;
  if (elementwise === true || rankFree === true) return { keepsRank: true };
  return rankFree?.(n.attrs);
}

export function unshapedInputs(c: CompiledGraph): string[] {
  return [...c.inputs.values()].filter((d) => d.shape === undefined).map((d) => d.name);
}

interface Blame { input: string; node: string; op: string; needsRank: boolean }

/**
 * The first node (in order) that a value of unknown rank reaches and whose op is not known to be rank-free
 * (`needsRank`), with the input behind it; else the likeliest suspect for a rank-dependent derivative graph.
 */
function blame(c: CompiledGraph, unshaped: readonly string[]): Blame | undefined {
  const origin = new Map<string, string>(unshaped.map((n) => [n, n]));
  let first: Blame | undefined;
  // a whole-tensor reduction or loss is the likelier culprit than the elementwise ops before it
  let reduction: Blame | undefined;
  for (const n of c.order) {
    const from = n.inputs.find((i) => origin.has(i));
    if (from === undefined) continue;
    const hit: Blame = { input: origin.get(from)!, node: n.name, op: n.op.name, needsRank: false };
    first ??= hit;
    const use = rankFreeUse(n);
    if (use === undefined) return { ...hit, needsRank: true };
    if (use.reducesAll === true) reduction ??= hit;
    if (use.keepsRank) origin.set(n.name, hit.input);
  }
  return reduction ?? first;
}

function needShape(c: CompiledGraph, unshaped: readonly string[], cause?: unknown, b = blame(c, unshaped)): never {
  const input = b?.input ?? unshaped[0]!;
  const through = b === undefined ? 'transform this graph' : `transform through ${b.op} node "${b.node}"`;
  const path = c.inputs.get(input)!.path;
  const detail = `input "${input}" declares no shape; declare its shape (null for unknown sizes) to ${through}`;
  throw new GradserveError('SHAPE_MISMATCH', detail, { errors: [{ path, message: detail }], cause });
}

function withRank(graph: Graph, unshaped: readonly string[], rank: number): Graph {
  const inputs: Record<string, InputSpec> = { ...(graph.inputs ?? {}) };
  for (const n of unshaped) inputs[n] = { ...inputs[n], shape: Array<null>(rank).fill(null) };
  return { ...graph, inputs };
}

/**
 * Runs `build` (a transform of a graph whose inputs all declare shapes) over the probe ranks; `c` is the compiled
 * original graph. Returns the rank-free result with the unshaped inputs (and the inputs derived from them) restored
 * to no shape.
 */
export function transformRankFree(graph: Graph, c: CompiledGraph, unshaped: readonly string[], build: (g: Graph) => Graph): Graph {
  // Ops outside the rank-free set may branch on the rank (1-D matmul, axes lists), including ranks not probed.
  const b = blame(c, unshaped);
  if (b?.needsRank) needShape(c, unshaped, undefined, b);
  const ranks = probeRanks(graph);
  const results: Graph[] = [];
  const errors: GradserveError[] = [];
  for (const r of ranks) {
    try {
      results.push(build(withRank(graph, unshaped, r)));
    } catch (e) {
      if (!(e instanceof GradserveError)) throw e;
      errors.push(e);
    }
  }
  if (errors.length > 0) {
    // A failure at every rank for the same reason (unknown value, integer wrt, ...) is the request's own error.
    const code = errors[0]!.code;
    const same = errors.length === ranks.length && errors.every((e) => e.code === code) &&
      (code !== 'SHAPE_MISMATCH' || errors.every((e) => e.message === errors[0]!.message));
    // Not one element at any probed rank: the value's rank follows an unshaped input's, and only a declared shape
    // (such as [] for a scalar) can settle it; "shape [None]" would name a rank the request never gave.
    if (same && code !== 'NOT_SCALAR') throw errors[0]!;
    if (same) {
      const input = unshaped[0]!;
      const first = errors[0]!;
      const value = /^"([^"]*)"/.exec(first.message)?.[1] ?? 'the differentiated value';
      const detail = `"${value}" takes its shape from input "${input}", which declares none, so it may have more than one element; declare the shape of "${input}" ([] for a scalar) to take a gradient`;
      throw new GradserveError('NOT_SCALAR', detail, { errors: [...(first.errors ?? []).map((e) => ({ path: e.path, message: detail })), { path: c.inputs.get(input)!.path, message: detail }], cause: first });
    }
    needShape(c, unshaped, errors[0]);
  }
  // Inputs whose declared shape follows the probe rank (the unshaped ones, their tangent/cotangent inputs) get none.
  const free = new Set<string>();
  for (const name of Object.keys(results[0]!.inputs ?? {})) {
    const shapes = results.map((g) => stableStringify(g.inputs?.[name]?.shape ?? null));
    if (shapes.some((s) => s !== shapes[0])) free.add(name);
  }
  const strip = (g: Graph): Graph => {
    const inputs: Record<string, InputSpec> = {};
    for (const [name, spec] of Object.entries(g.inputs ?? {})) {
      if (Object.hasOwn(graph.inputs ?? {}, name)) inputs[name] = graph.inputs![name]!;
      else if (free.has(name)) {
        const { shape: _drop, ...rest } = spec;
        inputs[name] = rest;
      } else inputs[name] = spec;
    }
    return { ...g, inputs };
  };
  const stripped = results.map(strip);
  const text = stripped.map((g) => stableStringify(g));
  if (text.some((t) => t !== text[0])) needShape(c, unshaped);
  return stripped[0]!;
}
