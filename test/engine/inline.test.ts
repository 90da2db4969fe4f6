/**
 * RunOptions.inline: the kernels run on the calling thread instead of the thread pool, with the same results, on the
 * native-program path and node by node (executeNodes, the path of untraceable plans).
 */
import { describe, expect, it } from 'vitest';
import { executeNodes } from '../../src/engine/executor.js';
import { runsPooled } from '../../src/engine/program.js';
import { planFor } from '../../src/graph/plan.js';
import { compileGraph } from '../../src/graph/validate.js';
import { engine, GraphBuilder, tensor } from '../../src/index.js';
import { ASYNC_THRESHOLD, INLINE_PROGRAM_FLOPS, INLINE_PROGRAM_WORK } from '../../src/kernels.types.js';
import { rng } from '../support/random.js';

const N = 256;
// y = tanh(x·w)·w, loss = sum(y²): 2 products of 256³, well above the size that goes to the thread pool
function model() {
  const b = new GraphBuilder();
  const x = b.input('x', [N, N]);
  const w = b.input('w', [N, N]);
  const y = x.matmul(w).tanh().matmul(w);
  return b.output(y.square().sum().as('loss')).build();
}

function inputs() {
  const r = rng(5);
  const a = () => Float32Array.from({ length: N * N }, () => (r() - 0.5) / 8);
  return { x: tensor('FP32', [N, N], a()), w: tensor('FP32', [N, N], a()) };
}

/** Whether `call` settles before a setImmediate queued just before it: only a run that never left this thread does. */
async function settlesBeforeImmediate(call: () => Promise<unknown>): Promise<boolean> {
  let immediate = false;
  setImmediate(() => {
    immediate = true;
  });
  await call();
  return !immediate;
}

describe('inline runs', () => {
  const graph = model();
  const xs = inputs();

  it('give the results of a pooled run, and never leave the calling thread', async () => {
    const pooled = await engine.grad(graph, xs, 'loss', ['x', 'w']);
    const inline = await engine.grad(graph, xs, 'loss', ['x', 'w'], { inline: true });
    expect(inline.outputs.loss!.data).toEqual(pooled.outputs.loss!.data);
    for (const k of ['x', 'w']) expect(inline.gradients[k]!.data).toEqual(pooled.gradients[k]!.data);
    // warm: the plan and its program are cached, so only the run itself can leave the thread
    expect(await settlesBeforeImmediate(() => engine.grad(graph, xs, 'loss', ['x', 'w'], { inline: true }))).toBe(true);
    expect(await settlesBeforeImmediate(() => engine.grad(graph, xs, 'loss', ['x', 'w']))).toBe(false);
    expect(await settlesBeforeImmediate(() => engine.evaluate(graph, xs, undefined, { inline: true }))).toBe(true);
  });

  it('node by node too', async () => {
    const plan = planFor(compileGraph(graph), xs, ['loss']);
    const pooled = await executeNodes(plan, xs);
    const inline = await executeNodes(plan, xs, { inline: true });
    expect(inline.get('loss')!.data).toEqual(pooled.get('loss')!.data);
    expect(await settlesBeforeImmediate(() => executeNodes(plan, xs, { inline: true }))).toBe(true);
    expect(await settlesBeforeImmediate(() => executeNodes(plan, xs))).toBe(false);
  });

  it('by default for programs of little work and few flops, which a thread hop would cost more than', async () => {
    expect(runsPooled(ASYNC_THRESHOLD - 1, 1e12)).toBe(false);
    expect(runsPooled(ASYNC_THRESHOLD, INLINE_PROGRAM_FLOPS - 1)).toBe(false);
    expect(runsPooled(ASYNC_THRESHOLD, INLINE_PROGRAM_FLOPS)).toBe(true);
    expect(runsPooled(INLINE_PROGRAM_WORK, 0)).toBe(true);
    // 96 x 128 elements through three elementwise steps: 8 x 12 288 elements of work (above ASYNC_THRESHOLD, under
    // INLINE_PROGRAM_WORK), ~37 000 flops
    const b = new GraphBuilder();
    const x = b.input('x', [96, 128]);
    const g = b.output(x.tanh().mul(x).add(x).as('y')).build();
    const r = rng(6);
    const xs = { x: tensor('FP32', [96, 128], Float32Array.from({ length: 96 * 128 }, () => r() - 0.5)) };
    const first = await engine.evaluate(g, xs);
    expect(await settlesBeforeImmediate(() => engine.evaluate(g, xs))).toBe(true);
    const again = await engine.evaluate(g, xs);
    expect(again.outputs.y!.data).toEqual(first.outputs.y!.data);
  });
});
