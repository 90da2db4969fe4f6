/** Limits, admission, cancellation, runtime errors, plan caching, shapes/cost without executing. */
import { describe, expect, test } from 'vitest';
import { GradserveError } from '../../src/errors.js';
import { GraphBuilder, evaluate, grad, shapes, tensor } from '../../src/index.js';
import { caches } from '../../src/graph/plan.js';
import { buildSteps } from '../../src/graph/plan.js';
import { compileGraph } from '../../src/graph/validate.js';
import type { CostEstimate, ExecStats } from '../../src/engine.types.js';
import type { Graph } from '../../src/graph/types.js';
import { failure } from '../support/errors.js';

function mlp(): Graph {
  const b = new GraphBuilder();
  const x = b.input('x', [null, 4]);
  const h = x.matmul(b.input('w1', [4, 8])).add(b.input('b1', [8])).tanh().as('h');
  const y = h.matmul(b.input('w2', [8, 2])).as('y');
  return b.output(y, y.square().mean().as('loss')).build();
}

const mlpInputs = (n: number) => ({
  x: tensor('FP32', [n, 4], Array.from({ length: 4 * n }, (_, i) => Math.sin(i))),
  w1: tensor('FP32', [4, 8], Array.from({ length: 32 }, (_, i) => Math.cos(i) / 4)),
  b1: tensor('FP32', [8], Array.from({ length: 8 }, (_, i) => i / 10)),
  w2: tensor('FP32', [8, 2], Array.from({ length: 16 }, (_, i) => Math.sin(2 * i) / 3)),
});

describe('limits are checked before allocating', () => {
  test('a shape bomb is TOO_LARGE naming node and shape', async () => {
    const graph: Graph = {
      inputs: { x: { shape: [], datatype: 'FP32' } },
      nodes: [{ name: 'big', op: 'broadcast_to', inputs: ['x'], attrs: { shape: [1e9, 1e9] } }],
    };
    const e = await failure(evaluate(graph, { x: tensor('FP32', [], [1]) }));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.status).toBe(413);
    expect(e.message).toContain('big');
    expect(e.message).toContain('[1000000000, 1000000000]');
  });

  test('memory budget in binary units, maxTensorElements, maxNodes', async () => {
    let e = await failure(evaluate(mlp(), mlpInputs(1024), undefined, { memoryBudgetBytes: 64 * 1024 }));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toMatch(/KiB/);
    expect(e.message).toContain('64 KiB');
    e = await failure(evaluate(mlp(), mlpInputs(4), undefined, { maxTensorElements: 16 }));
    expect(e.code).toBe('TOO_LARGE');
    e = await failure(evaluate(mlp(), mlpInputs(4), undefined, { maxNodes: 2 }));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.errors?.[0]?.path).toBe('graph.nodes');
    const ok = await evaluate(mlp(), mlpInputs(4), undefined, { memoryBudgetBytes: 1 << 20, maxTensorElements: 64, maxNodes: 10 });
    expect(ok.outputs.loss!.shape).toEqual([]);
  });
});

describe('execution', () => {
  test('onPlan runs before execution and can refuse; onExecuted reports', async () => {
    const seen: string[] = [];
    const refused = await failure(evaluate(mlp(), mlpInputs(2), undefined, {
      onPlan: async () => {
        seen.push('plan');
        throw new GradserveError('OVERLOADED', 'busy');
      },
      onExecuted: () => seen.push('executed'),
    }));
    expect(refused.code).toBe('OVERLOADED');
    expect(seen).toEqual(['plan']);
    let stats: ExecStats | undefined;
    let planned: CostEstimate | undefined;
    await evaluate(mlp(), mlpInputs(2), undefined, { onPlan: (c) => void (planned = c), onExecuted: (s) => void (stats = s) });
    expect(stats!.nodes).toBe(6); // matmul, add, tanh, matmul, square, mean
    expect(planned!.flops).toBe(stats!.flops);
    expect(planned!.peakBytes).toBeGreaterThan(0);
    expect(planned!.peakBytes).toBeLessThanOrEqual(planned!.totalBytes);
    // the measured peak of live buffers agrees with the free-at-last-use estimate
    const inputBytes = Object.values(mlpInputs(2)).reduce((s, t) => s + t.data.byteLength, 0);
    expect(stats!.peakBytes).toBeGreaterThan(inputBytes);
    expect(stats!.peakBytes).toBeLessThanOrEqual(planned!.peakBytes);
  });

  test('cancellation between nodes: CANCELLED, or the GradserveError given as reason', async () => {
    const ac = new AbortController();
    ac.abort();
    let e = await failure(evaluate(mlp(), mlpInputs(2), undefined, { signal: ac.signal }));
    expect(e.code).toBe('CANCELLED');
    const timeout = new AbortController();
    timeout.abort(new GradserveError('DEADLINE_EXCEEDED', 'too slow'));
    e = await failure(evaluate(mlp(), mlpInputs(2), undefined, { signal: timeout.signal }));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    // a timeout signal that fired before the call
    const t = AbortSignal.timeout(1);
    await new Promise((r) => setTimeout(r, 20));
    e = await failure(evaluate(mlp(), mlpInputs(2), undefined, { signal: t }));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
  });

  test('runtime index errors name the node and op', async () => {
    const graph: Graph = {
      inputs: { x: { shape: [3], datatype: 'FP32' }, i: { shape: [2], datatype: 'INT64' } },
      nodes: [{ name: 'picked', op: 'gather', inputs: ['x', 'i'] }],
    };
    const e = await failure(evaluate(graph, { x: tensor('FP32', [3], [1, 2, 3]), i: tensor('INT64', [2], [0n, 7n]) }));
    expect(e.code).toBe('INDEX_OUT_OF_RANGE');
    expect(e.message).toContain('picked');
    expect(e.message).toContain('gather');
  });

  test('intermediates are freed at their last use, outputs are kept', () => {
    const c = compileGraph(mlp());
    const { steps } = buildSteps(c, ['loss']);
    const freed = steps.flatMap((s) => s.free);
    expect(freed).toContain('h');
    expect(freed).toContain('y');
    expect(freed).not.toContain('loss');
    expect(freed).not.toContain('x');
    const keepY = buildSteps(c, ['y', 'loss']).steps.flatMap((s) => s.free);
    expect(keepY).not.toContain('y');
    // every value is freed after the step that reads it last
    const order = steps.map((s) => s.node.name);
    for (const [k, s] of steps.entries()) {
      for (const f of s.free) {
        const lastReader = Math.max(...steps.map((t, j) => (t.node.inputs.includes(f) ? j : -1)));
        expect(k, `${f} freed at ${order[k]}`).toBe(lastReader);
      }
    }
  });

  test('repeated calls hit the plan cache and the derivative cache', async () => {
    const graph = mlp();
    await grad(graph, mlpInputs(3), 'loss', ['w1', 'w2']);
    const hits = caches.plans.hits;
    const compiledHits = caches.compiled.hits;
    const again = await grad(graph, mlpInputs(3), 'loss', ['w1', 'w2']);
    expect(caches.plans.hits).toBe(hits + 1);
    expect(caches.compiled.hits).toBe(compiledHits + 1);
    expect(again.gradients.w1!.shape).toEqual([4, 8]);
    // another batch size is another plan
    const misses = caches.plans.misses;
    await grad(graph, mlpInputs(5), 'loss', ['w1', 'w2']);
    expect(caches.plans.misses).toBeGreaterThan(misses);
  });
});

describe('shapes', () => {
  test('values, flops and peak bytes without executing', () => {
    const r = shapes(mlp(), { x: { shape: [16, 4], datatype: 'FP32' }, w1: { shape: [4, 8], datatype: 'FP32' }, b1: { shape: [8], datatype: 'float32' }, w2: { shape: [8, 2], datatype: 'FP32' } });
    expect(r.values.h).toEqual({ shape: [16, 8], datatype: 'FP32' });
    expect(r.values.loss).toEqual({ shape: [], datatype: 'FP32' });
    expect(r.values.x).toEqual({ shape: [16, 4], datatype: 'FP32' });
    expect(r.flops).toBeGreaterThanOrEqual(2 * 16 * 4 * 8 + 2 * 16 * 8 * 2);
    const inputsBytes = 4 * (64 + 32 + 8 + 16);
    expect(r.peakBytes).toBeGreaterThan(inputsBytes);
    expect(r.peakBytes).toBeLessThan(inputsBytes + 4 * (16 * 8 * 3 + 16 * 2 * 2 + 1) + 1);
  });

  test('huge shapes are reported, not refused (nothing is allocated)', () => {
    const graph: Graph = { inputs: { x: { shape: [], datatype: 'FP32' } }, nodes: [{ name: 'big', op: 'broadcast_to', inputs: ['x'], attrs: { shape: [65536, 65536, 64] } }] };
    const r = shapes(graph, { x: { shape: [], datatype: 'FP32' } });
    expect(r.values.big!.shape).toEqual([65536, 65536, 64]);
    expect(r.peakBytes).toBe(4 + 4 * 65536 * 65536 * 64);
  });
});

describe('runtime cast errors', () => {
  test('casting NaN to an integer type is INVALID_CAST naming the node', async () => {
    const graph: Graph = {
      inputs: { x: { shape: [2], datatype: 'FP32' } },
      nodes: [{ name: 'asint', op: 'cast', inputs: ['x'], attrs: { to: 'INT32' } }],
    };
    const e = await failure(evaluate(graph, { x: tensor('FP32', [2], [1, NaN]) }));
    expect(e.code).toBe('INVALID_CAST');
    expect(e.message).toContain('asint');
    expect(e.message).toContain('cast');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0]');
  });
});

describe('large work goes through the thread pool', () => {
  test('results and native errors are the same on the async path', async () => {
    const n = 256; // 2 * 256² elements of input: above ASYNC_THRESHOLD
    const a = tensor('FP64', [n, n], Array.from({ length: n * n }, (_, i) => ((i * 7) % 13) - 6));
    const b = tensor('FP64', [n, n], Array.from({ length: n * n }, (_, i) => ((i * 5) % 11) - 5));
    const graph: Graph = {
      inputs: { a: { shape: [n, n], datatype: 'FP64' }, b: { shape: [n, n], datatype: 'FP64' }, i: { shape: [2], datatype: 'INT64' } },
      nodes: [
        { name: 'p', op: 'matmul', inputs: ['a', 'b'] },
        { name: 'rows', op: 'gather', inputs: ['p', 'i'] },
      ],
      outputs: ['p', 'rows'],
    };
    const { outputs } = await evaluate(graph, { a, b, i: tensor('INT64', [2], [3n, -1n]) });
    for (const [r, c] of [[0, 0], [3, 17], [255, 254]] as const) {
      let s = 0;
      for (let k = 0; k < n; k++) s += (a.data[r * n + k] as number) * (b.data[k * n + c] as number);
      expect(outputs.p!.data[r * n + c]).toBe(s);
    }
    expect(outputs.rows!.shape).toEqual([2, n]);
    expect(outputs.rows!.data[n + 5]).toBe(outputs.p!.data[(n - 1) * n + 5]);
    const e = await failure(evaluate(graph, { a, b, i: tensor('INT64', [2], [0n, BigInt(n)]) }));
    expect(e.code).toBe('INDEX_OUT_OF_RANGE');
    expect(e.message).toContain('rows');
  });
});
