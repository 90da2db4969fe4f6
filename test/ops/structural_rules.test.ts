/**
 * Every sample of the structural families through its own VJP and JVP rules: central differences and the duality
 * <u, J v> = <Jᵀ u, v>. (The registry-wide generic test covers second order through the transforms.)
 */
import { describe, expect, it } from 'vitest';
import { ops as reduceOps } from '../../src/ops/reduce.js';
import { ops as linalgOps } from '../../src/ops/linalg.js';
import { ops as shapeOps } from '../../src/ops/shape.js';
import { ops as nnOps } from '../../src/ops/nn.js';
import { checkRules } from './structural_support.js';

const families = [...reduceOps, ...linalgOps, ...shapeOps, ...nnOps].filter((op) => op.differentiable);

describe.each(families.map((op) => [op.name, op] as const))('%s', (name, op) => {
  it.each(op.samples.map((s, i) => [s.note ?? `sample ${i}`, s] as const))('rules agree: %s', async (_note, s) => {
    const r = await checkRules(name, s);
    expect(r.shapesOk).toBe(true);
    expect(r.maxFdError).toBeLessThan(1e-6);
    expect(r.dualityError).toBeLessThan(1e-10);
  });
});
