/** `shapes` with RunOptions refuses what evaluate would refuse: any value over maxTensorElements is TOO_LARGE (413). */
import { describe, expect, test } from 'vitest';
import { GradserveError, shapes } from '../../src/index.js';
import type { Graph } from '../../src/index.js';

function tooLarge(f: () => unknown): GradserveError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GradserveError);
    expect((e as GradserveError).code).toBe('TOO_LARGE');
    return e as GradserveError;
  }
  throw new Error('expected TOO_LARGE');
}

const outer: Graph = {
  inputs: { x: { shape: [null, 1], datatype: 'FP32' }, y: { shape: [null], datatype: 'FP32' } },
  nodes: [{ name: 'z', op: 'mul', inputs: ['x', 'y'] }, { name: 's', op: 'sum', inputs: ['z'] }],
  outputs: ['s'],
};

describe('shapes: element limits', () => {
  test('a node over maxTensorElements is refused, naming the node, its shape and the limit', () => {
    const specs = { x: { shape: [100000, 1], datatype: 'FP32' }, y: { shape: [100000], datatype: 'FP32' } };
    const e = tooLarge(() => shapes(outer, specs, { maxTensorElements: 1e9 }));
    expect(e.message).toContain('node "z" (mul)');
    expect(e.message).toContain('[100000, 100000]');
    expect(e.message).toContain('1000000000');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0]');
  });

  test('an input spec over the limit is refused at inputs.<name>; the default limit applies with empty options', () => {
    const specs = { x: { shape: [5e9, 1], datatype: 'FP32' }, y: { shape: [1], datatype: 'FP32' } };
    const e = tooLarge(() => shapes(outer, specs, {}));
    expect(e.message).toContain('input "x" has [5000000000, 1]');
    expect(e.errors?.[0]?.path).toBe('inputs.x');
  });

  test('within the limit the same request answers, and without options (engine-internal use) nothing is refused', () => {
    const small = { x: { shape: [10, 1], datatype: 'FP32' }, y: { shape: [20], datatype: 'FP32' } };
    expect(shapes(outer, small, { maxTensorElements: 200 }).values.z).toEqual({ shape: [10, 20], datatype: 'FP32' });
    tooLarge(() => shapes(outer, small, { maxTensorElements: 199 }));
    const big = { x: { shape: [1e9, 1], datatype: 'FP32' }, y: { shape: [1e9], datatype: 'FP32' } };
    expect(shapes(outer, big).values.z!.shape).toEqual([1e9, 1e9]);
  });
});
