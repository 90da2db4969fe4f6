/** Over a real TCP socket: the seed example, health under heavy load, client disconnects, graceful shutdown. */
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.types.js';
import type { GradserveError } from '../../src/errors.js';
import type { GradserveApp } from '../../src/server/app.js';
import { closeTo, engineWith, linearGraph, makeApp, matmul, sleepUnlessAborted, transpose } from './helpers.js';

async function listen(app: GradserveApp): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no address');
  return `http://127.0.0.1:${addr.port}`;
}

const postJson = (base: string, url: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

describe('real socket', () => {
  it('serves the seed example through /v1/vjp', async () => {
    const app = await makeApp();
    try {
      const base = await listen(app);
      const x = [3, -1];
      const w = [0.5, 1, -2, 4, 0, 1];
      const dy = [1, 2, 3];
      const r = await postJson(base, '/v1/vjp', { graph: linearGraph, inputs: { x: [x], w: { shape: [2, 3], data: w } }, cotangents: { y: [dy] }, wrt: ['x', 'w'] });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
      const b = await r.json();
      closeTo(b.outputs.y.data, matmul(x, w, 1, 2, 3));
      closeTo(b.gradients.x.data, matmul(dy, transpose(w, 2, 3), 1, 3, 2));
      closeTo(b.gradients.w.data, matmul(transpose(x, 1, 2), dy, 2, 1, 3));
      const nf = await fetch(`${base}/nowhere`);
      expect(nf.status).toBe(404);
      expect(nf.headers.get('content-type')).toMatch(/application\/problem\+json/);
    } finally {
      await app.close();
    }
  });

  it('keeps health responsive while 8 heavy requests run', async () => {
    const app = await makeApp();
    try {
      const base = await listen(app);
      const n = 1024;
      // Small body, heavy work: a scalar broadcast to [n, n] and three n×n matmuls (~2·10^10 flops per request).
      const graph = {
        inputs: { s: { shape: [], datatype: 'FP32' } },
        nodes: [
          { name: 'a', op: 'broadcast_to', inputs: ['s'], attrs: { shape: [n, n] } },
          { name: 'b', op: 'matmul', inputs: ['a', 'a'] },
          { name: 'c', op: 'matmul', inputs: ['b', 'a'] },
          { name: 'd', op: 'matmul', inputs: ['c', 'a'] },
          { name: 'f', op: 'sum', inputs: ['d'] },
        ],
        outputs: ['f'],
      };
      let running = 8;
      const heavy = Array.from({ length: 8 }, () =>
        postJson(base, '/v1/evaluate', { graph, inputs: { s: 1e-3 } }).then(async (r) => {
          running--;
          return { status: r.status, body: await r.json() };
        }));
      const latencies: number[] = [];
      while (running > 0) {
        const t0 = performance.now();
        const h = await fetch(`${base}/v2/health/live`);
        latencies.push(performance.now() - t0);
        expect(h.status).toBe(200);
        await new Promise((r) => setTimeout(r, 10));
      }
      const results = await Promise.all(heavy);
      // Each entry of d is n^3 · s^4, so f = n^5 · 1e-12.
      for (const r of results) {
        expect(r.status).toBe(200);
        closeTo(r.body.outputs.f.data, [n ** 5 * 1e-12], 1e-3);
      }
      // Enough probes were taken during the load for the percentile to mean something.
      expect(latencies.length).toBeGreaterThanOrEqual(10);
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]!;
      console.log(`health during load: ${latencies.length} probes, p50 ${latencies[latencies.length >> 1]!.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
      expect(p99).toBeLessThan(500);
    } finally {
      await app.close();
    }
  }, 120_000);

  it('cancels the run when the client disconnects', async () => {
    let reason: unknown;
    let settle!: () => void;
    const done = new Promise<void>((r) => { settle = r; });
    const engine: Partial<Engine> = {
      evaluate: async (_g, _i, _o, opts) => {
        try {
          await sleepUnlessAborted(20_000, opts?.signal);
        } catch (e) {
          reason = e;
          throw e;
        } finally {
          settle();
        }
        return { outputs: {} };
      },
    };
    const app = await makeApp({ engine: await engineWith(engine) });
    try {
      const base = await listen(app);
      const ac = new AbortController();
      const pending = postJson(base, '/v1/evaluate', { graph: linearGraph, inputs: {} }, ac.signal).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100));
      ac.abort();
      await pending;
      await done;
      expect((reason as GradserveError).code).toBe('CANCELLED');
    } finally {
      await app.close();
    }
  });

  it('finishes in-flight requests on close and reports not ready while closing', async () => {
    const engine: Partial<Engine> = {
      evaluate: async () => {
        await new Promise((r) => setTimeout(r, 300));
        return { outputs: {} };
      },
    };
    const app = await makeApp({ engine: await engineWith(engine) });
    const base = await listen(app);
    const inflight = postJson(base, '/v1/evaluate', { graph: linearGraph, inputs: {} });
    await new Promise((r) => setTimeout(r, 50));
    const closing = app.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(app.gradserve.shuttingDown).toBe(true);
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ outputs: {} });
    await closing;
    await expect(fetch(`${base}/v2/health/live`)).rejects.toThrow();
  });
});
