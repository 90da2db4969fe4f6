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

  test('recycled request and result buffers are kept while busy and dropped after the idle period', async () => {
    app = await makeApp({ idleTrimMs: 150, poolBytes: 64 << 20 });
    const n = 1024; // x is 128 KiB: the body and the x gradient are large enough to recycle
    const body = { ...mlpRequest(n), inputs: { x: { shape: [n, 32], datatype: 'FP32', binary_data_size: 0 }, w: { shape: [32, 32], datatype: 'FP32', binary_data_size: 0 } } };
    const xs = Buffer.from(new Float32Array(n * 32).fill(0.25).buffer);
    const ws = Buffer.from(new Float32Array(32 * 32).fill(0.01).buffer);
    body.inputs.x.binary_data_size = xs.length;
    body.inputs.w.binary_data_size = ws.length;
    const header = Buffer.from(JSON.stringify(body));
    const recycled = async () => Number(/gradserve_recycled_buffer_bytes (\d+)/.exec((await app!.inject({ method: 'GET', url: '/metrics' })).body)?.[1]);
    for (let i = 0; i < 2; i++) {
      const res = await app.inject({
        method: 'POST', url: '/v1/grad', payload: Buffer.concat([header, xs, ws]),
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      });
      expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
    }
    expect(await recycled()).toBeGreaterThan(0); // the framed body (and the x gradient) went back for reuse
    // Scraping /metrics is activity too: look only after a quiet spell longer than the idle period.
    let left = -1;
    for (let i = 0; i < 5 && left !== 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      left = await recycled();
    }
    expect(left).toBe(0);
  });

  test('idle trimming can be switched off', async () => {
    app = await makeApp({ idleTrimMs: 0 });
    const res = await app.inject({ method: 'POST', url: '/v1/grad', payload: mlpRequest(256) });
    expect(res.statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(kernels.poolStats!().cachedBytes).toBeGreaterThan(0);
  });
});
