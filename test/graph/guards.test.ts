/**
 * The engine's guards against faulty op definitions and its cancellation point, exercised with test-only ops added to
 * the registry for the duration of a test.
 */
import { afterEach, describe, expect, onTestFinished, test } from 'vitest';
import { z } from 'zod';
import { evaluate, grad, jvp, tensor } from '../../src/index.js';
import { OPS } from '../../src/ops/registry.js';
import type { OpDef } from '../../src/ops/types.js';
import type { Graph } from '../../src/graph/types.js';
import { failure } from '../support/errors.js';

const added: string[] = [];
function register(op: OpDef): void {
  (OPS as Map<string, OpDef>).set(op.name, op);
  added.push(op.name);
}
afterEach(() => {
  for (const n of added.splice(0)) (OPS as Map<string, OpDef>).delete(n);
});

function passThrough(name: string, extra: Partial<OpDef>): OpDef {
  return {
    name,
    inputs: ['x'],
    attrs: z.object({}),
    outputDatatype: 'same as x',
    differentiable: true,
    doc: 'test op',
    infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
    run: async ([x]) => x!,
    samples: [],
    ...extra,
  };
}

// compiled graphs are cached by content, so each test names its own op
const g1 = (op: string): Graph => ({ inputs: { x: { shape: [3], datatype: 'FP64' } }, nodes: [{ name: 'y', op, inputs: ['x'] }, { name: 'f', op: 'sum', inputs: ['y'] }] });
const x3 = tensor('FP64', [3], [1, 2, 3]);

describe('guards', () => {
  test('a VJP rule giving a cotangent of the wrong shape is an INTERNAL error naming node and op', async () => {
    register(passThrough('probe_vjp', { vjp: ({ e, g }) => [e.op('sum', [g])] }));
    const e = await failure(grad(g1('probe_vjp'), { x: x3 }, 'f', ['x']));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain('"y" (probe_vjp)');
    expect(e.message).toContain('[3]');
  });

  test('a JVP rule giving a tangent of the wrong shape is an INTERNAL error', async () => {
    register(passThrough('probe_jvp', { jvp: ({ e, tangents: [t] }) => e.op('sum', [t!]) }));
    const e = await failure(jvp(g1('probe_jvp'), { x: x3 }, { x: x3 }));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain('"y" (probe_jvp)');
  });

  test('a kernel result that contradicts the shape rule is caught', async () => {
    register(passThrough('probe_run', { run: async () => tensor('FP64', [2], [0, 0]) }));
    const e = await failure(evaluate(g1('probe_run'), { x: x3 }));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain('[2]');
  });

  test('a differentiable op without a VJP rule is reported, not silently zero', async () => {
    register(passThrough('probe_norule', {}));
    const e = await failure(grad(g1('probe_norule'), { x: x3 }, 'f', ['x']));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain('no VJP rule');
  });

  test('cancellation is honoured between nodes node by node: nothing after the abort runs', async () => {
    // ops whose run() has JS side effects are traced into programs before anything runs: pin the node-by-node path
    const before = process.env.GRADSERVE_PROGRAMS;
    process.env.GRADSERVE_PROGRAMS = '0';
    onTestFinished(() => {
      if (before === undefined) delete process.env.GRADSERVE_PROGRAMS;
      else process.env.GRADSERVE_PROGRAMS = before;
    });
    const ac = new AbortController();
    const ran: string[] = [];
    register(passThrough('probe', { run: async ([x]) => (ran.push('probe'), ac.abort(), x!) }));
    register(passThrough('after', { run: async ([x]) => (ran.push('after'), x!) }));
    const graph: Graph = { inputs: { x: { shape: [3], datatype: 'FP64' } }, nodes: [{ name: 'a', op: 'probe', inputs: ['x'] }, { name: 'b', op: 'after', inputs: ['a'] }] };
    const e = await failure(evaluate(graph, { x: x3 }, undefined, { signal: ac.signal }));
    expect(e.code).toBe('CANCELLED');
    expect(ran).toEqual(['probe']);
  });
});
