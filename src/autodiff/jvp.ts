/**
 * Forward mode as a graph -> graph transform: each input in `wrt` gets a new graph input `tangent:<input>`, and walking
 * the graph forward each node's JVP rule builds the tangent of its output from its inputs' tangents (null = zero, so
 * untouched parts of the graph cost nothing). Outputs `tangent:<output>` in request order; an output that does not
 * depend on any tangent gets `zeros_like`.
 */
import { GradserveError, fail } from '../errors.js';
import type { Metas } from '../graph/infer.js';
import type { Graph } from '../graph/types.js';
import type { CompiledGraph } from '../graph/validate.js';
import type { Ref } from '../ops/types.js';
import { isFloat } from '../tensor/dtype.js';
import { fmtSymShape } from '../tensor/shape.js';
import { checkDifferentiable } from './vjp.js';
import { GraphWriter, compatibleShapes, reserveNames } from './writer.js';

export interface JvpBuild {
  graph: Graph;
  /** `tangent:<output>` per requested output, request order, duplicates collapsed */
  tangentNames: string[];
  /** tangent input name per wrt input */
  tangentInputs: Map<string, string>;
  /** forward nodes renamed to free an output name (see reserveNames) */
  rename: Map<string, string>;
}

export function tangentName(v: string): string {
  return `tangent:${v}`;
}

export function buildJvp(c0: CompiledGraph, metas0: Metas, wrt: readonly string[], wrtPaths: readonly string[], of0: readonly string[], keep0: readonly string[] = []): JvpBuild {
  const { c, metas, rename } = reserveNames(c0, metas0, [...new Set(of0.map(tangentName))]);
  const r = (s: string): string => rename.get(s) ?? s;
  const of = of0.map(r);
  const keep = keep0.map(r);
  wrt.forEach((v, i) => {
    if (c.kinds.get(v) !== 'input') fail('UNKNOWN_VALUE', `"${v}" is a ${c.kinds.get(v)}, not a graph input; tangents are given for graph inputs`, wrtPaths[i]);
    checkDifferentiable(metas, v, wrtPaths[i]!, 'tangent input');
  });
  const w = new GraphWriter(c, metas);
  const tangents = new Map<string, Ref>();
  const tangentInputs = new Map<string, string>();
  wrt.forEach((v, i) => {
    if (tangentInputs.has(v)) return;
    const name = tangentName(v);
    tangents.set(v, w.addInput(name, metas.get(v)!, wrtPaths[i]));
    tangentInputs.set(v, name);
  });

  for (const n of c.order) {
    const ts = n.inputs.map((i) => tangents.get(i) ?? null);
    if (ts.every((t) => t === null)) continue;
    const out = metas.get(n.name)!;
    if (!n.op.differentiable || !isFloat(out.dtype)) continue;
    if (!n.op.jvp) throw new GradserveError('INTERNAL', `op "${n.op.name}" is marked differentiable but has no JVP rule (node "${n.name}")`);
    const prefix = `jvp/${n.name}/`;
    const t = n.op.jvp({ e: w.emitter(prefix), inputs: n.inputs.map((i) => w.ref(i)), output: w.ref(n.name), tangents: ts, attrs: n.attrs });
    if (t === null || t === undefined) continue;
    if (!compatibleShapes(t.shape, out.shape) || t.dtype !== out.dtype) {
      throw new GradserveError('INTERNAL', `JVP of node "${n.name}" (${n.op.name}) gave a tangent of ${fmtSymShape(t.shape)} ${t.dtype}, the output is ${fmtSymShape(out.shape)} ${out.dtype}`);
    }
    tangents.set(n.name, t);
  }

  const tangentNames: string[] = [];
  of.forEach((o, k) => {
    const name = tangentName(of0[k]!);
    if (tangentNames.includes(name)) return;
    tangentNames.push(name);
    // an input with a tangent is its own output: its tangent input already carries the name
    if (tangentInputs.get(o) === name) return;
    const t = tangents.get(o) ?? w.node('jvp/zeros/', 'zeros_like', [w.ref(o)], undefined);
    w.node('jvp/out/', 'identity', [t], undefined, name);
  });
  return { graph: w.finish(tangentNames, keep), tangentNames, tangentInputs, rename };
}
