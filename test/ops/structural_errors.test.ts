/**
 * Error codes, details and request paths of the structural ops, through the engine's `evaluate` so the paths are the
 * ones a caller sees: shape errors at the input at fault (`graph.nodes[i].inputs[j]`) or the node, datatype errors at
 * `graph.nodes[i]`, attribute errors at the attribute (`graph.nodes[i].attrs.axes`), run-time
 * index errors naming the node.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, GradserveError } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { f64, i64 } from './structural_support.js';

/** A graph `inputs -> (one filler node) -> y` where y is node index 1, so paths are `graph.nodes[1]`. */
function oneOp(op: string, inputs: Record<string, Tensor>, attrs?: Record<string, unknown>): [Graph, Record<string, Tensor>] {
  const names = Object.keys(inputs);
  const graph: Graph = {
    inputs: Object.fromEntries(names.map((n) => [n, { shape: [...inputs[n]!.shape], datatype: inputs[n]!.dtype }])),
    nodes: [
      { name: 'first', op: 'identity', inputs: [names[0]!] },
      { name: 'y', op, inputs: ['first', ...names.slice(1)], ...(attrs ? { attrs } : {}) },
    ],
    outputs: ['y'],
  };
  return [graph, inputs];
}

async function failure(op: string, inputs: Record<string, Tensor>, attrs?: Record<string, unknown>): Promise<GradserveError> {
  const [g, feeds] = oneOp(op, inputs, attrs);
  try {
    await evaluate(g, feeds);
  } catch (e) {
    if (e instanceof GradserveError) return e;
    throw e;
  }
  throw new Error(`${op} did not fail`);
}

const x23 = f64([2, 3], [1, 2, 3, 4, 5, 6]);

describe('attribute errors are INVALID_ATTRS at graph.nodes[i].attrs.<attr>', () => {
  it.each([
    ['sum', { axes: 2 }, /axis 2 is out of range for rank 2/, 'axes'],
    ['mean', { axes: [0, -2] }, /axis -2 is repeated .*rank 2/, 'axes'],
    ['argmax', { axis: -3 }, /axis -3 is out of range for rank 2/, 'axis'],
    ['transpose', { perm: [0, 0] }, /perm axis 0 is repeated/, 'perm'],
    ['transpose', { perm: [1] }, /1 entries for rank 2/, 'perm'],
    ['slice', { starts: [0], ends: [2], steps: [0] }, /steps\[0\] is 0/, 'steps[0]'],
    ['slice', { starts: [0, 1], ends: [2] }, /starts has 2 entries but ends has 1/, 'ends'],
    ['pad', { pads: [[1, 1]] }, /1 pairs for \[2, 3\] \(rank 2\)/, 'pads'],
    ['pad', { pads: [[0, 0], [-1, 0]] }, /negative/, 'pads'],
    ['unsqueeze', { axes: [3] }, /axis 3 is out of range for rank 3/, 'axes'],
    ['reshape', { shape: [-1, -1] }, /more than one -1/, 'shape'],
    ['softmax', { axis: 2 }, /axis 2 is out of range for rank 2/, 'axis'],
    ['sum', { axis: 0 }, /axis/, 'axis'],
  ])('%s %j', async (op, attrs, message, attr) => {
    const e = await failure(op, { x: x23 }, attrs);
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toBe(`graph.nodes[1].attrs.${attr}`);
    expect(e.message).toMatch(message);
    if (!('axis' in attrs && op === 'sum')) expect(e.message).toContain(`node "y" (${op})`);
  });
});

describe('shape errors are SHAPE_MISMATCH at the input at fault (else the node), naming the shapes', () => {
  it.each([
    ['matmul', { x: x23, w: f64([2, 2], [1, 2, 3, 4]) }, undefined, /\[2, 3\] x \[2, 2\]/, '.inputs[1]'],
    ['matmul', { x: f64([2, 2, 3], new Array(12).fill(1)), w: f64([3, 3, 1], new Array(9).fill(1)) }, undefined, /batch dims of \[2, 2, 3\] and \[3, 3, 1\]/, '.inputs[1]'],
    ['matmul', { x: f64([], [1]), w: x23 }, undefined, /rank >= 1/, '.inputs[0]'],
    ['reshape', { x: x23 }, { shape: [4, -1] }, /cannot reshape \[2, 3\]: 6 elements/, ''],
    ['reshape', { x: x23 }, { shape: [5] }, /cannot reshape \[2, 3\]/, ''],
    ['broadcast_to', { x: x23 }, { shape: [3, 3] }, /cannot broadcast \[2, 3\] to \[3, 3\]/, ''],
    ['squeeze', { x: x23 }, { axes: 0 }, /axis 0 of \[2, 3\] has size 2, not 1/, ''],
    ['concat', { x: x23, z: f64([3, 3], new Array(9).fill(0)) }, { axis: 1 }, /xs\[1\] \[3, 3\] does not match xs\[0\] \[2, 3\]/, '.inputs[1]'],
    ['stack', { x: x23, z: f64([3, 2], new Array(6).fill(0)) }, undefined, /equal shapes/, '.inputs[1]'],
    ['softmax_cross_entropy', { x: x23, labels: i64([3], [0, 1, 2]) }, undefined, /\[3\] must have the logits shape \[2, 3\] without axis 1: \[2\]/, '.inputs[1]'],
    ['softmax_cross_entropy', { x: x23, labels: f64([3, 2], new Array(6).fill(0)) }, undefined, /probability labels \[3, 2\]/, '.inputs[1]'],
    ['mse', { x: x23, b: f64([2], [1, 2]) }, undefined, /do not broadcast/, '.inputs[1]'],
    ['binary_cross_entropy_with_logits', { x: x23, t: f64([3], [0, 1, 0]) }, undefined, /same shape/, '.inputs[1]'],
    ['max', { x: f64([2, 0], []) }, { axes: 1 }, /zero-size axis 1 of \[2, 0\]/, ''],
  ])('%s %s', async (op, inputs, attrs, message, at) => {
    const e = await failure(op, inputs as Record<string, Tensor>, attrs as Record<string, unknown> | undefined);
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.errors?.[0]?.path).toBe(`graph.nodes[1]${at}`);
    expect(e.message).toContain(`node "y" (${op})`);
    expect(e.message).toMatch(message);
  });
});

describe('datatype errors are DATATYPE_MISMATCH (no implicit promotion)', () => {
  const i32x = tensor('INT32', [2, 3], [1, 2, 3, 4, 5, 6]);
  const boolx = tensor('BOOL', [2, 3], [1, 0, 1, 0, 1, 0]);
  it.each([
    ['mean', { x: i32x }], ['logsumexp', { x: i32x }], ['softmax', { x: i32x }], ['sum', { x: boolx }],
    ['matmul', { x: x23, w: tensor('FP32', [3, 2], [1, 2, 3, 4, 5, 6]) }],
    ['concat', { x: x23, z: tensor('FP32', [2, 3], [1, 2, 3, 4, 5, 6]) }],
    ['gather', { x: x23, i: f64([1], [0]) }],
    ['one_hot', { x: x23 }],
    ['mse', { x: i32x, b: i32x }],
    ['softmax_cross_entropy', { x: x23, labels: tensor('FP32', [2, 3], [1, 0, 0, 0, 1, 0]) }],
  ])('%s', async (op, inputs) => {
    const e = await failure(op, inputs as Record<string, Tensor>, op === 'one_hot' ? { depth: 2 } : undefined);
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[1]');
    expect(e.message).toContain(`node "y" (${op})`);
  });
});

describe('run-time index errors are INDEX_OUT_OF_RANGE naming the node', () => {
  it('gather index outside [-n, n)', async () => {
    const e = await failure('gather', { x: x23, i: i64([2], [0, 2]) });
    expect(e.code).toBe('INDEX_OUT_OF_RANGE');
    expect(e.message).toMatch(/node "y" \(gather\).*2.*axis 0.*size 2/);
    const neg = await failure('gather', { x: x23, i: i64([1], [-4]) }, { axis: 1 });
    expect(neg.code).toBe('INDEX_OUT_OF_RANGE');
  });

  it('class label outside the class axis', async () => {
    const e = await failure('softmax_cross_entropy', { x: x23, labels: i64([2], [1, 3]) });
    expect(e.code).toBe('INDEX_OUT_OF_RANGE');
    expect(e.message).toMatch(/node "y" \(softmax_cross_entropy\).*label 3.*size 3/);
    const neg = await failure('softmax_cross_entropy', { x: x23, labels: i64([2], [-1, 0]) });
    expect(neg.code).toBe('INDEX_OUT_OF_RANGE');
  });
});
