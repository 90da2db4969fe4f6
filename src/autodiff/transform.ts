/**
 * Symbolic transforms (/v1/transform): the derivative graph for the graph's declared input shapes (null dims stay
 * null), returned as API.md JSON that can be evaluated or transformed again.
 */
import { fail } from '../errors.js';
import type { TransformSpec } from '../engine.types.js';
import { inferAll, inputMetasFromDeclarations } from '../graph/infer.js';
import { compileCached } from '../graph/plan.js';
import type { Graph } from '../graph/types.js';
import { checkValueNames } from '../graph/validate.js';
import { buildJvp } from './jvp.js';
import { transformRankFree, unshapedInputs } from './rank_free.js';
import { buildVjp, type Seed } from './vjp.js';

function names(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) fail('INVALID_REQUEST', `${path} must be a list of value names`, path);
  return v as string[];
}

export function transform(graph: Graph, spec: TransformSpec): Graph {
  const c = compileCached(graph);
  const unshaped = unshapedInputs(c);
  if (unshaped.length > 0) return transformRankFree(graph, c, unshaped, (g) => transformShaped(g, spec));
  return transformShaped(graph, spec);
}

function transformShaped(graph: Graph, spec: TransformSpec): Graph {
  const c = compileCached(graph);
  const metas = inferAll(c, inputMetasFromDeclarations(c));
  switch (spec.transform) {
    case 'grad': {
      if (typeof spec.of !== 'string') fail('INVALID_REQUEST', 'of must be a value name (string)', 'of');
      checkValueNames(c, [spec.of], 'of', 'of');
      const wrt = names(spec.wrt, 'wrt');
      checkValueNames(c, wrt, 'wrt', 'wrt value');
      const seeds: Seed[] = [{ kind: 'ones', output: spec.of, path: 'of' }];
      return buildVjp(c, metas, seeds, wrt, wrt.map((_, i) => `wrt[${i}]`)).graph;
    }
    case 'vjp': {
      const of = names(spec.of, 'of');
      checkValueNames(c, of, 'of', 'of');
      const wrt = names(spec.wrt, 'wrt');
      checkValueNames(c, wrt, 'wrt', 'wrt value');
      const seeds: Seed[] = of.map((o, k) => ({ kind: 'input', output: o, path: `of[${k}]` }));
      return buildVjp(c, metas, seeds, wrt, wrt.map((_, i) => `wrt[${i}]`)).graph;
    }
    case 'jvp': {
      const wrt = names(spec.wrt, 'wrt');
      checkValueNames(c, wrt, 'wrt', 'tangent input');
      const of = spec.of === undefined ? c.outputs : names(spec.of, 'of');
      checkValueNames(c, of, 'of', 'of');
      return buildJvp(c, metas, wrt, wrt.map((_, i) => `wrt[${i}]`), of).graph;
    }
    default:
      fail('INVALID_REQUEST', `transform must be "grad", "vjp" or "jvp", got ${JSON.stringify((spec as { transform: unknown }).transform)}`, 'transform');
  }
}
