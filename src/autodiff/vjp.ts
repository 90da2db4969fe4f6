/**
 * Reverse mode as a graph -> graph transform. Walking the forward graph backwards, each node's VJP rule turns the
 * cotangent of its output into cotangents of its inputs (nodes appended to the graph); fan-out is accumulated with
 * `add`; every cotangent's shape is checked against its input's. Only nodes on a path from a `wrt` value to a seeded
 * output are visited, and the result is pruned to what the requested gradients need. `wrt` values the outputs do not
 * depend on get `zeros_like`.
 */
import { GradserveError, fail } from '../errors.js';
import type { Metas } from '../graph/infer.js';
import type { Graph } from '../graph/types.js';
import type { CompiledGraph } from '../graph/validate.js';
import type { Ref } from '../ops/types.js';
import { isFloat } from '../tensor/dtype.js';
import { fmtSymShape, symNumel } from '../tensor/shape.js';
import { GraphWriter, compatibleShapes, reserveNames } from './writer.js';

export type Seed =
  /** grad: the output must have one element; its cotangent is 1 */
  | { kind: 'ones'; output: string; path: string }
  /** vjp: the cotangent is a new graph input `cotangent:<output>` */
  | { kind: 'input'; output: string; path: string };

export interface VjpBuild {
  graph: Graph;
  /** output names `grad:<wrt>` in request order (duplicates in wrt collapse to one output) */
  gradNames: string[];
  /** cotangent input names per seeded output */
  cotangentInputs: Map<string, string>;
  /** forward nodes renamed to free an output name (see reserveNames) */
  rename: Map<string, string>;
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

export function gradName(wrt: string): string {
  return `grad:${wrt}`;
}

export function cotangentName(output: string): string {
  return `cotangent:${output}`;
}

export function checkDifferentiable(metas: Metas, name: string, path: string, what: string): void {
  const m = metas.get(name)!;
  if (!isFloat(m.dtype)) {
    fail('NOT_DIFFERENTIABLE', `${what} "${name}" is ${m.dtype}: integer and bool values have no gradient (cast to FP32/FP64 first)`, path);
  }
}

/** Values whose value depends differentiably on one of `wrt` (non-differentiable ops and integer values cut it). */
export function dependents(c: CompiledGraph, metas: Metas, wrt: readonly string[]): Set<string> {
  const d = new Set(wrt);
  for (const n of c.order) {
    if (!n.op.differentiable || !isFloat(metas.get(n.name)!.dtype)) continue;
    if (n.inputs.some((i) => d.has(i))) d.add(n.name);
  }
  return d;
}

export function buildVjp(c0: CompiledGraph, metas0: Metas, seeds0: Seed[], wrt0: readonly string[], wrtPaths: readonly string[], keep0: readonly string[] = []): VjpBuild {
  const { c, metas, rename } = reserveNames(c0, metas0, unique(wrt0.map(gradName)));
  const r = (s: string): string => rename.get(s) ?? s;
  const seeds = seeds0.map((s) => ({ ...s, output: r(s.output) }));
  const wrt = wrt0.map(r);
  const keep = keep0.map(r);
  wrt.forEach((w, i) => checkDifferentiable(metas, w, wrtPaths[i]!, 'wrt value'));
  for (const s of seeds) {
    checkDifferentiable(metas, s.output, s.path, 'output');
    if (s.kind === 'ones') {
      const shape = metas.get(s.output)!.shape;
      if (symNumel(shape) !== 1) {
        fail('NOT_SCALAR', `"${s.output}" has shape ${fmtSymShape(shape)}; a gradient needs a value with exactly one element (use vjp with a cotangent otherwise)`, s.path);
      }
    }
  }

  const w = new GraphWriter(c, metas);
  const contributions = new Map<string, Ref[]>();
  const push = (v: string, r: Ref): void => {
    const l = contributions.get(v);
    if (l) l.push(r);
    else contributions.set(v, [r]);
  };
  const totals = new Map<string, Ref>();
  const total = (v: string): Ref | undefined => {
    const done = totals.get(v);
    if (done) return done;
    const l = contributions.get(v);
    if (!l || l.length === 0) return undefined;
    let acc = l[0]!;
    for (let i = 1; i < l.length; i++) acc = w.node(`vjp/${v}/sum/`, 'add', [acc, l[i]!], undefined);
    totals.set(v, acc);
    return acc;
  };

  const cotangentInputs = new Map<string, string>();
  for (const s of seeds) {
    const out = w.ref(s.output);
    if (s.kind === 'ones') push(s.output, w.node('vjp/seed/', 'ones_like', [out], undefined));
    else {
      const name = cotangentName(seeds0.find((s0) => r(s0.output) === s.output)!.output);
      if (!cotangentInputs.has(s.output)) {
        push(s.output, w.addInput(name, out, s.path));
        cotangentInputs.set(s.output, name);
      }
    }
  }

  const dep = dependents(c, metas, wrt);
  const reach = new Set(seeds.map((s) => s.output));
  for (let k = c.order.length - 1; k >= 0; k--) {
    const n = c.order[k]!;
    if (reach.has(n.name) && dep.has(n.name)) n.inputs.forEach((i) => reach.add(i));
  }

  for (let k = c.order.length - 1; k >= 0; k--) {
    const n = c.order[k]!;
    if (!dep.has(n.name) || !reach.has(n.name)) continue;
    const g = total(n.name);
    if (g === undefined) continue;
    if (!n.op.vjp) throw new GradserveError('INTERNAL', `op "${n.op.name}" is marked differentiable but has no VJP rule (node "${n.name}")`);
    const prefix = `vjp/${n.name}/`;
    const inputs = n.inputs.map((i) => w.ref(i));
    const cts = n.op.vjp({ e: w.emitter(prefix), inputs, output: w.ref(n.name), g, attrs: n.attrs });
    n.inputs.forEach((i, j) => {
      const ct = cts[j];
      if (ct === null || ct === undefined || !dep.has(i)) return;
      const want = metas.get(i)!;
      if (!compatibleShapes(ct.shape, want.shape) || ct.dtype !== want.dtype) {
        throw new GradserveError('INTERNAL', `VJP of node "${n.name}" (${n.op.name}) gave input "${i}" a cotangent of ${fmtSymShape(ct.shape)} ${ct.dtype}, the input is ${fmtSymShape(want.shape)} ${want.dtype}`);
      }
      push(i, ct);
    });
  }

  const gradNames: string[] = [];
  wrt.forEach((v, idx) => {
    const name = gradName(wrt0[idx]!);
    if (gradNames.includes(name)) return;
    const t = total(v) ?? w.node('vjp/zeros/', 'zeros_like', [w.ref(v)], undefined);
    w.node('vjp/out/', 'identity', [t], undefined, name, wrtPaths[idx]);
    gradNames.push(name);
  });
  return { graph: w.finish(gradNames, keep), gradNames, cotangentInputs, rename };
}
