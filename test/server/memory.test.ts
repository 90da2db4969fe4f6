/**
 * Native memory between requests (src/server/memory.ts): the pool of program intermediates holds freed buffers
 * while requests come, within its cap, and is emptied after the idle period.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { kernels } from '../../src/kernels.js';
import type { GradserveApp } from '../../src/server/app.js';
import { makeApp } from './helpers.js';

const mlpRequest = (n: number) => ({
  graph: {
    inputs: { x: { shape: [n, 32], datatype: 'FP32' }, w: { shape: [32, 32], datatype: 'FP32' } },
    nodes: [
      { name: 'h', op: 'matmul', inputs: ['x', 'w'] },
      { name: 'a', op: 'tanh', inputs: ['h'] },
      { name: 'l', op: 'sum', inputs: ['a'] },
    ],
    outputs: ['l'],
  },
  inputs: { x: Array.from({ length: n }, (_, i) => Array.from({ length: 32 }, (_, j) => ((i + j) % 7) / 7)), w: Array.from({ length: 32 }, () => Array(32).fill(0.01)) },
  of: 'l',
  wrt: ['x', 'w'],
});

let app: GradserveApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe('native memory between requests', () => {
  test('freed intermediates are pooled while busy and returned after the idle period', async () => {
    app = await makeApp({ idleTrimMs: 150, poolBytes: 64 << 20 });
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'POST', url: '/v1/grad', payload: mlpRequest(256) });
      expect(res.statusCode).toBe(200);
    }
    const busy = kernels.poolStats!();
    expect(busy.capBytes).toBe(64 << 20);
    expect(busy.liveBytes).toBe(0); // nothing held once the requests are answered
    expect(busy.cachedBytes).toBeGreaterThan(0);
    expect(busy.hits).toBeGreaterThan(0); // the second and third requests reused the first one's buffers
    expect(await until(() => kernels.poolStats!().cachedBytes === 0, 3000)).toBe(true);
  });

  test('idle trimming can be switched off', async () => {
    app = await makeApp({ idleTrimMs: 0 });
    const res = await app.inject({ method: 'POST', url: '/v1/grad', payload: mlpRequest(256) });
    expect(res.statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(kernels.poolStats!().cachedBytes).toBeGreaterThan(0);
  });
});
