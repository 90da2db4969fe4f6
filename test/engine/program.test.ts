/**
 * Native programs (src/engine/program.ts, binding/program.cc): every registry op's forward and VJP graphs trace into
 * a program whose results are bit-identical to the node-by-node path; failures, cancellation and concurrency leave
 * no native memory behind.
 */
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { evaluate, transform } from '../../src/index.js';
import { execute, executeNodes } from '../../src/engine/executor.js';
import { compileCached, planFor } from '../../src/graph/plan.js';
import { programStatus } from '../../src/engine/program.js';
import type { Graph } from '../../src/graph/types.js';
import { kernels } from '../../src/kernels.js';
import { ALL_OPS, OPS } from '../../src/ops/registry.js';
import type { OpDef } from '../../src/ops/types.js';
import { isFloat } from '../../src/tensor/dtype.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { floatInputs, opGraph, randomLike, sampleTensor } from '../autodiff/opcheck_support.js';
import { failure } from '../support/errors.js';
import { rng } from '../support/random.js';

function bytesOf(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

async function bothWays(graph: Graph, inputs: Record<string, Tensor>, outputs: string[]): Promise<void> {
  const plan = planFor(compileCached(graph), inputs, outputs);
  expect(await programStatus(plan, kernels), 'the plan runs as a native program').toBeUndefined();
  const viaProgram = await execute(plan, inputs);
  const viaNodes = await executeNodes(plan, inputs);
  for (const o of outputs) {
    const a = viaProgram.get(o)!, b = viaNodes.get(o)!;
    expect(a.dtype, o).toBe(b.dtype);
    expect(a.shape, o).toEqual(b.shape);
    expect(Buffer.from(bytesOf(a)).equals(Buffer.from(bytesOf(b))), `${o}: same bytes`).toBe(true);
  }
}

const cases = ALL_OPS.flatMap((op) => op.samples.map((sample, k) => ({ op, sample, k })));

describe('native programs: same results as node by node', () => {
  test.each(cases.map((c) => [`${c.op.name} #${c.k}`, c] as const))('%s: forward and VJP graphs', async (_l, c) => {
    const r = rng(4321 + c.k);
    const ts = c.sample.inputs.map((s) => sampleTensor(s, r));
    const graph = opGraph(c.op, c.sample, ts);
    const inputs = Object.fromEntries(ts.map((t, i) => [`in${i}`, t]));
    await bothWays(graph, inputs, ['y']);

    const wrt = floatInputs(inputs);
    const y = (await evaluate(graph, inputs)).outputs.y!;
    if (wrt.length === 0 || !isFloat(y.dtype) || !c.op.differentiable) return;
    const back = transform(graph, { transform: 'vjp', of: ['y'], wrt });
    const withCot = { ...inputs, 'cotangent:y': randomLike(y, r) };
    await bothWays(back, withCot, back.outputs!);
  });
});

const chain = (n: number, size: number): { graph: Graph; x: Tensor } => ({
  graph: {
    inputs: { x: { shape: [size], datatype: 'FP32' } },
    nodes: Array.from({ length: n }, (_, i) => ({ name: `t${i}`, op: i % 2 === 0 ? 'tanh' : 'sin', inputs: [i === 0 ? 'x' : `t${i - 1}`] })),
    outputs: [`t${n - 1}`],
  },
  x: tensor('FP32', [size], Float32Array.from({ length: size }, (_, i) => (i % 17) / 17)),
});

describe('native programs: failures, cancellation, memory', () => {
  test('a kernel failing mid-program names its node and frees every intermediate', async () => {
    const graph: Graph = {
      inputs: { x: { shape: [4, 3], datatype: 'FP64' }, i: { shape: [2], datatype: 'INT64' } },
      nodes: [
        { name: 'a', op: 'exp', inputs: ['x'] },
        { name: 'b', op: 'gather', inputs: ['a', 'i'], attrs: { axis: 0 } },
        { name: 'c', op: 'sum', inputs: ['b'] },
      ],
      outputs: ['c'],
    };
    const x = tensor('FP64', [4, 3], Array.from({ length: 12 }, (_, k) => k / 10));
    const ok = await evaluate(graph, { x, i: tensor('INT64', [2], [0n, 3n]) });
    expect(ok.outputs.c!.shape).toEqual([]);
    const e = await failure(evaluate(graph, { x, i: tensor('INT64', [2], [0n, 7n]) }));
    expect(e.code).toBe('INDEX_OUT_OF_RANGE');
    expect(e.message).toMatch(/node "b" \(gather\).*7.*axis 0.*size 4/);
    expect(kernels.poolStats!().liveBytes).toBe(0);
  });

  test('a set cancel flag stops a program before its next step, with nothing left allocated', () => {
    const p = new kernels.Program!();
    const x = p.input('FP32', 1000);
    const a = p.call('unary', ['exp', x]) as { slot: number };
    const b = p.call('unary', ['sin', a]) as { slot: number };
    p.finish([b.slot]);
    const input = new Float32Array(1000);
    expect(p.run([input], new Int32Array([0]))[0]).toHaveLength(1000);
    let err: { code?: string; step?: number } | undefined;
    try {
      p.run([input], new Int32Array([1]));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe('CANCELLED');
    expect(err?.step).toBe(0);
    expect(kernels.poolStats!().liveBytes).toBe(0);
  });

  test('aborting a running request is CANCELLED and frees the program memory', async () => {
    const { graph, x } = chain(40, 1 << 20);
    await evaluate(graph, { x }); // traced and warm
    const ac = new AbortController();
    const run = evaluate(graph, { x }, undefined, { signal: ac.signal });
    setImmediate(() => ac.abort());
    const e = await failure(run);
    expect(e.code).toBe('CANCELLED');
    expect(kernels.poolStats!().liveBytes).toBe(0);
  });

  test('concurrent runs of one plan each get their own program instance and the right answer', async () => {
    const { graph, x } = chain(6, 1 << 16);
    const plan = planFor(compileCached(graph), { x }, ['t5']);
    const ref = (await executeNodes(plan, { x })).get('t5')!;
    const xs = [1, 2, 3].map((s) => tensor('FP32', x.shape, (x.data as Float32Array).map((v) => v * s)));
    const refs = await Promise.all(xs.map((xi) => executeNodes(plan, { x: xi })));
    const got = await Promise.all(xs.map((xi) => execute(plan, { x: xi })));
    const values = (t: Tensor | undefined): number[] => Array.from(t!.data as Float32Array);
    got.forEach((g, i) => expect(values(g.get('t5'))).toEqual(values(refs[i]!.get('t5'))));
    expect(values((await execute(plan, { x })).get('t5'))).toEqual(values(ref));
  });

  test('large results go into the memory allocResult gives (stale bytes overwritten); small ones do not ask', async () => {
    const { graph, x } = chain(4, 1 << 16);
    const plan = planFor(compileCached(graph), { x }, ['t1', 't3']);
    const ref = await executeNodes(plan, { x });
    const given: ArrayBuffer[] = [];
    const asked: number[] = [];
    const got = await execute(plan, { x }, {
      allocResult: (bytes) => {
        asked.push(bytes);
        const ab = new ArrayBuffer(bytes + 4096);
        new Float32Array(ab).fill(Number.NaN); // recycled memory holds old numbers
        given.push(ab);
        return ab;
      },
    });
    expect(asked).toEqual([4 << 16, 4 << 16]);
    for (const name of ['t1', 't3']) {
      const t = got.get(name)!;
      expect(given).toContain(t.data.buffer);
      expect(t.data.length).toBe(1 << 16);
      expect(Buffer.from(bytesOf(t)).equals(Buffer.from(bytesOf(ref.get(name)!))), name).toBe(true);
    }
    const small = chain(2, 8);
    const smallPlan = planFor(compileCached(small.graph), { x: small.x }, ['t1']);
    await execute(smallPlan, { x: small.x }, { allocResult: () => { throw new Error('a 32-byte result should not ask'); } });
  });

  test('run() refuses supplied output arrays of the wrong type or length', async () => {
    const { graph, x } = chain(2, 1 << 10);
    const plan = planFor(compileCached(graph), { x }, ['t1']);
    await expect(execute(plan, { x }, { allocResult: (bytes: number) => new ArrayBuffer(bytes) })).resolves.toBeDefined();
    const p = new kernels.Program!();
    const xin = p.input('FP32', 4);
    const y = p.call('unary', ['exp', xin]) as { slot: number };
    p.finish([y.slot]);
    expect(() => p.run([new Float32Array(4)], null, [new Float64Array(2)])).toThrow(/outputs\[0\] is FP64 with 2 elements, the program writes FP32 with 4/);
    const out = new Float32Array(4);
    const r = p.run([new Float32Array([0, 1, 2, 3])], null, [out]);
    expect(r[0]).toBe(out);
    expect(out[1]).toBeCloseTo(Math.E, 5);
  });

  test('an output that is a leaf, or listed twice, comes back without a copy', async () => {
    const graph: Graph = {
      inputs: { x: { shape: [2, 3], datatype: 'FP32' } },
      nodes: [{ name: 'r', op: 'reshape', inputs: ['x'], attrs: { shape: [3, 2] } }, { name: 'e', op: 'exp', inputs: ['r'] }],
      outputs: ['r', 'e', 'x'],
    };
    const x = tensor('FP32', [2, 3], [0, 1, 2, 3, 4, 5]);
    const out = (await evaluate(graph, { x })).outputs;
    expect(out.r!.shape).toEqual([3, 2]);
    expect(out.r!.data).toBe(x.data);
    expect(out.x!.data).toBe(x.data);
    expect(out.e!.data[1]).toBeCloseTo(Math.E, 5);
  });

  test('an op that computes in JS cannot be traced: its plan runs node by node with the same answer', async () => {
    const op: OpDef<Record<string, never>> = {
      name: 'probe_js_double',
      inputs: ['x'],
      attrs: z.strictObject({}) as unknown as z.ZodType<Record<string, never>>,
      outputDatatype: 'same as x',
      differentiable: false,
      internal: true,
      doc: 'test op',
      infer: ([x]) => ({ shape: [...x!.shape], dtype: x!.dtype }),
      run: async ([x]) => ({ dtype: x!.dtype, shape: x!.shape, data: (x!.data as Float64Array).map((v) => 2 * v) }),
      samples: [],
    };
    (OPS as Map<string, OpDef>).set(op.name, op as OpDef);
    try {
      const graph: Graph = { inputs: { x: { shape: [3], datatype: 'FP64' } }, nodes: [{ name: 'y', op: op.name, inputs: ['x'] }] };
      const x = tensor('FP64', [3], [1, 2, 3]);
      const plan = planFor(compileCached(graph), { x }, ['y']);
      expect(await programStatus(plan, kernels)).toMatch(/probe_js_double/);
      expect(Array.from((await evaluate(graph, { x })).outputs.y!.data as Float64Array)).toEqual([2, 4, 6]);
    } finally {
      (OPS as Map<string, OpDef>).delete(op.name);
    }
  });

  test('the pool keeps at most its cap of free buffers and trims to nothing', async () => {
    const { graph, x } = chain(4, 1 << 18);
    kernels.setPoolCap!(1 << 20);
    try {
      await evaluate(graph, { x });
      expect(kernels.poolStats!().cachedBytes).toBeLessThanOrEqual(1 << 20);
      kernels.trimPool!();
      expect(kernels.poolStats!().cachedBytes).toBe(0);
    } finally {
      kernels.setPoolCap!(256 << 20);
    }
  });
});
