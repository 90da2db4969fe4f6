/** Validation before anything runs: every error code with its path into the request body and a message naming it. */
import { describe, expect, test } from 'vitest';
import { evaluate, grad, jvp, tensor, vjp } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import { failure } from '../support/errors.js';

const x23 = tensor('FP32', [2, 3], [1, 2, 3, 4, 5, 6]);

function g(nodes: Graph['nodes'], extra: Partial<Graph> = {}): Graph {
  return { inputs: { x: { shape: [null, 3], datatype: 'FP32' } }, nodes, ...extra };
}

describe('graph validation', () => {
  test('nodes may come in any order', async () => {
    const graph = g([
      { name: 'b', op: 'exp', inputs: ['a'] },
      { name: 'a', op: 'neg', inputs: ['x'] },
    ], { outputs: ['b'] });
    const { outputs } = await evaluate(graph, { x: x23 });
    expect(outputs.b!.data[0]).toBeCloseTo(Math.exp(-1), 6);
  });

  test('duplicate names', async () => {
    const e = await failure(evaluate(g([{ name: 'x', op: 'neg', inputs: ['x'] }]), { x: x23 }));
    expect(e.code).toBe('DUPLICATE_NAME');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].name');
    expect(e.message).toContain('"x"');
  });

  test('unknown op', async () => {
    const e = await failure(evaluate(g([{ name: 'y', op: 'neg', inputs: ['x'] }, { name: 'z', op: 'frobnicate', inputs: ['y'] }]), { x: x23 }));
    expect(e.code).toBe('UNKNOWN_OP');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[1].op');
    expect(e.message).toContain('frobnicate');
  });

  test('wrong arity is INVALID_REQUEST naming the op inputs', async () => {
    const e = await failure(evaluate(g([{ name: 'y', op: 'matmul', inputs: ['x'] }]), { x: x23 }));
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.status).toBe(400);
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].inputs');
    expect(e.message).toMatch(/matmul.*takes 2 inputs.*got 1/);
  });

  test('attrs failing the schema or the op constraints', async () => {
    let e = await failure(evaluate(g([{ name: 'y', op: 'sum', inputs: ['x'], attrs: { axes: 'rows' } }]), { x: x23 }));
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].attrs.axes');
    expect(e.message).toContain('node "y" (sum): invalid attrs: axes');
    // an attribute of several forms says what it got and what it takes, not only "Invalid input"
    expect(e.message).toMatch(/axes: got "rows"; takes .*null/);
    expect(e.message).not.toContain('Invalid input');
    // a required attribute of several forms, missing (attrs left out), or given a value JSON cannot write
    e = await failure(evaluate(g([{ name: 'y', op: 'roll', inputs: ['x'] }]), { x: x23 }));
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.message).toMatch(/shifts: required; takes /);
    e = await failure(evaluate(g([{ name: 'y', op: 'roll', inputs: ['x'], attrs: { shifts: 1n } }]), { x: x23 }));
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.message).toMatch(/shifts: got 1n; takes /);
    e = await failure(evaluate(g([{ name: 'y', op: 'clip', inputs: ['x'], attrs: { min: 2, max: 1 } }]), { x: x23 }));
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].attrs.min');
    // one item per failing attribute; nested entries and unknown keys are paths of their own
    e = await failure(evaluate(g([{ name: 'y', op: 'pad', inputs: ['x'], attrs: { pads: [[0, 0], [0, 'x']], value: 'v' } }]), { x: x23 }));
    expect(e.errors?.map((i) => i.path).sort()).toEqual(['graph.nodes[0].attrs.pads[1][1]', 'graph.nodes[0].attrs.value']);
    e = await failure(evaluate(g([{ name: 'y', op: 'sum', inputs: ['x'], attrs: { axis: 0 } }]), { x: x23 }));
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].attrs.axis');
  });

  test('unknown values: node inputs, outputs', async () => {
    let e = await failure(evaluate(g([
      { name: 'a', op: 'neg', inputs: ['x'] },
      { name: 'b', op: 'neg', inputs: ['a'] },
      { name: 'c', op: 'add', inputs: ['b', 'nope'] },
    ]), { x: x23 }));
    expect(e.code).toBe('UNKNOWN_VALUE');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[2].inputs[1]');
    expect(e.message).toContain('"nope"');
    e = await failure(evaluate(g([{ name: 'a', op: 'neg', inputs: ['x'] }]), { x: x23 }, ['a', 'zz']));
    expect(e.code).toBe('UNKNOWN_VALUE');
    expect(e.errors?.[0]?.path).toBe('outputs[1]');
    e = await failure(evaluate(g([{ name: 'a', op: 'neg', inputs: ['x'] }], { outputs: ['q'] }), { x: x23 }));
    expect(e.errors?.[0]?.path).toBe('graph.outputs[0]');
  });

  test('cycles name the values in them, self-loops included', async () => {
    let e = await failure(evaluate(g([
      { name: 'a', op: 'add', inputs: ['x', 'c'] },
      { name: 'b', op: 'neg', inputs: ['a'] },
      { name: 'c', op: 'exp', inputs: ['b'] },
      { name: 'out', op: 'neg', inputs: ['c'] },
    ]), { x: x23 }));
    expect(e.code).toBe('GRAPH_CYCLE');
    for (const v of ['a', 'b', 'c']) expect(e.message).toContain(v);
    expect(e.message).not.toContain('out');
    e = await failure(evaluate(g([{ name: 's', op: 'add', inputs: ['x', 's'] }]), { x: x23 }));
    expect(e.code).toBe('GRAPH_CYCLE');
    expect(e.message).toContain('"s"');
    expect(e.message).toContain('itself');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0]');
  });

  test('input tensors against declarations', async () => {
    const graph = g([{ name: 'y', op: 'neg', inputs: ['x'] }]);
    let e = await failure(evaluate(graph, {}));
    expect(e.code).toBe('MISSING_INPUT');
    expect(e.errors?.[0]?.path).toBe('inputs.x');
    e = await failure(evaluate(graph, { x: tensor('FP32', [2, 4]) }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.errors?.[0]?.path).toBe('inputs.x');
    expect(e.message).toContain('[2, 4]');
    expect(e.message).toContain('[None, 3]');
    e = await failure(evaluate(graph, { x: tensor('FP64', [2, 3]) }));
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.errors?.[0]?.path).toBe('inputs.x');
    e = await failure(evaluate(graph, { x: x23, extra: x23 }));
    expect(e.code).toBe('UNKNOWN_VALUE');
    expect(e.errors?.[0]?.path).toBe('inputs.extra');
    // any size where the declaration says null
    const ok = await evaluate(graph, { x: tensor('FP32', [5, 3]) });
    expect(ok.outputs.y!.shape).toEqual([5, 3]);
  });

  test('op shape and datatype rules name the node', async () => {
    let e = await failure(evaluate({
      inputs: { a: { shape: [2, 3], datatype: 'FP32' }, b: { shape: [4, 5], datatype: 'FP32' } },
      nodes: [{ name: 'mm', op: 'matmul', inputs: ['a', 'b'] }],
    }, { a: x23, b: tensor('FP32', [4, 5]) }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toContain('mm');
    expect(e.message).toContain('[2, 3]');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].inputs[1]');
    // n-ary broadcasting points at the first operand that does not fit the ones before it
    e = await failure(evaluate({
      inputs: { c: { shape: [2], datatype: 'BOOL' }, a: { shape: [2, 1], datatype: 'FP32' }, b: { shape: [3], datatype: 'FP32' } },
      nodes: [{ name: 'w', op: 'where', inputs: ['c', 'a', 'b'] }],
    }, { c: tensor('BOOL', [2], [1, 0]), a: tensor('FP32', [2, 1]), b: tensor('FP32', [3]) }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toBe('node "w" (where): shapes [2], [2, 1], [3] do not broadcast');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].inputs[2]');
    e = await failure(evaluate({ inputs: { i: { datatype: 'INT32' } }, nodes: [{ name: 'e', op: 'exp', inputs: ['i'] }] }, { i: tensor('INT32', [2], [1, 2]) }));
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.message).toContain('INT32');
  });

  test('derivative requests: of, wrt, cotangents, tangents', async () => {
    const graph = g([{ name: 'y', op: 'tanh', inputs: ['x'] }, { name: 'l', op: 'sum', inputs: ['y'] }], {
      inputs: { x: { shape: [null, 3], datatype: 'FP32' }, i: { datatype: 'INT32' } },
    });
    const inputs = { x: x23, i: tensor('INT32', [1], [3]) };
    let e = await failure(grad(graph, inputs, 'y', ['x']));
    expect(e.code).toBe('NOT_SCALAR');
    expect(e.errors?.[0]?.path).toBe('of');
    expect(e.message).toContain('[2, 3]');
    e = await failure(grad(graph, inputs, 'l', ['x', 'i']));
    expect(e.code).toBe('NOT_DIFFERENTIABLE');
    expect(e.status).toBe(422);
    expect(e.errors?.[0]?.path).toBe('wrt[1]');
    expect(e.message).toContain('"i"');
    e = await failure(grad(graph, inputs, 'l', ['zz']));
    expect(e.code).toBe('UNKNOWN_VALUE');
    expect(e.errors?.[0]?.path).toBe('wrt[0]');
    e = await failure(grad(graph, inputs, 'nope', ['x']));
    expect(e.errors?.[0]?.path).toBe('of');
    e = await failure(vjp(graph, inputs, { y: tensor('FP32', [3, 2]) }, ['x']));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.errors?.[0]?.path).toBe('cotangents.y');
    e = await failure(vjp(graph, inputs, { q: tensor('FP32', [3, 2]) }, ['x']));
    expect(e.code).toBe('UNKNOWN_VALUE');
    expect(e.errors?.[0]?.path).toBe('cotangents.q');
    e = await failure(jvp(graph, inputs, { x: tensor('FP64', [2, 3]) }));
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.errors?.[0]?.path).toBe('tangents.x');
    e = await failure(jvp(graph, inputs, { y: x23 }));
    expect(e.code).toBe('UNKNOWN_VALUE');
    expect(e.errors?.[0]?.path).toBe('tangents.y');
  });

  test('structural garbage is INVALID_REQUEST, never a crash', async () => {
    const e = await failure(evaluate({ nodes: [{ name: 'y', op: 'neg', inputs: 'x' }] } as unknown as Graph, {}));
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].inputs');
  });
});

describe('library callers passing malformed arguments get request errors', () => {
  const graph = g([{ name: 'y', op: 'neg', inputs: ['x'] }]);
  test('inputs, outputs and tensors of the wrong kind', async () => {
    expect((await failure(evaluate(graph, null as never))).code).toBe('INVALID_REQUEST');
    expect((await failure(evaluate(graph, { x: x23 }, 'y' as never))).errors?.[0]?.path).toBe('outputs');
    const e = await failure(evaluate(graph, { x: 3 as never }));
    expect(e.code).toBe('INVALID_TENSOR');
    expect(e.errors?.[0]?.path).toBe('inputs.x');
    expect((await failure(grad(graph, { x: x23 }, 'y', 'x' as never))).errors?.[0]?.path).toBe('wrt');
  });
});
