/**
 * Recycled request and result buffers (src/server/recycle.ts): size classes, the cap, when a request's buffers come
 * back (only after its response is written and its engine call has settled), and end to end: repeated framed
 * requests with different numbers reuse buffers and every answer is still exact.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { BufferRecycler, Lease, RECYCLE_MIN_BYTES, sizeClass } from '../../src/server/recycle.js';
import type { GradserveApp } from '../../src/server/app.js';
import { makeApp } from './helpers.js';
import { frame, postFramed, t, unframe } from './framing-support.js';

describe('size classes', () => {
  test('a class holds the size asked, wastes at most 1/8, and is its own class', () => {
    for (const n of [1, 1000, RECYCLE_MIN_BYTES, RECYCLE_MIN_BYTES + 1, 100_000, 1 << 20, (1 << 20) + 1, 3_000_001, 67_108_864 + 4096]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      if (n > RECYCLE_MIN_BYTES) expect(c).toBeLessThanOrEqual(n * 1.125 + 1);
      expect(sizeClass(c)).toBe(c);
    }
  });
});

describe('BufferRecycler', () => {
  test('a given-back buffer serves the next take of its class; the cap bounds what is kept', () => {
    const r = new BufferRecycler(3 * (1 << 20));
    const a = r.take(1 << 20)!;
    expect(a.byteLength).toBe(1 << 20);
    r.give(a);
    expect(r.stats().cachedBytes).toBe(1 << 20);
    expect(r.take((1 << 20) - 1000)).toBe(a); // same class
    expect(r.stats()).toMatchObject({ cachedBytes: 0, hits: 1, misses: 1 });
    const bufs = [r.take(1 << 20)!, r.take(1 << 20)!, r.take(1 << 20)!, r.take(1 << 20)!];
    for (const b of bufs) r.give(b);
    expect(r.stats().cachedBytes).toBe(3 << 20); // the fourth did not fit
    r.trim();
    expect(r.stats().cachedBytes).toBe(0);
  });

  test('detached or odd-sized buffers are not kept', () => {
    const r = new BufferRecycler(1 << 30);
    const a = r.take(1 << 20)!;
    structuredClone(a, { transfer: [a] }); // detaches a
    r.give(a);
    r.give(new ArrayBuffer(RECYCLE_MIN_BYTES * 3 + 7));
    expect(r.stats().cachedBytes).toBe(0);
  });
});

describe('Lease', () => {
  test('buffers come back once the response is written and every pin is released, in either order', () => {
    const r = new BufferRecycler(1 << 30);
    const lease = new Lease(r);
    expect(lease.alloc(100)).toBeUndefined(); // small: left to V8
    const a = lease.alloc(1 << 20)!;
    const unpin = lease.pin();
    lease.responded(); // answered early (e.g. a timeout) while the engine still runs
    expect(r.stats().cachedBytes).toBe(0);
    unpin();
    unpin(); // idempotent
    expect(r.stats().cachedBytes).toBe(1 << 20);
    expect(r.take(1 << 20)).toBe(a);

    const l2 = new Lease(r);
    l2.alloc(1 << 20);
    const u2 = l2.pin();
    u2();
    expect(r.stats().cachedBytes).toBe(0); // the response is still being written
    l2.responded();
    expect(r.stats().cachedBytes).toBe(1 << 20);
  });

  test('a lease holds at most its cap: past it, results are ordinary memory (nothing pinned until the answer)', () => {
    const r = new BufferRecycler(1 << 30);
    const lease = new Lease(r, 3 << 20);
    expect(lease.alloc(1 << 20)).toBeDefined();
    expect(lease.alloc(1 << 20)).toBeDefined();
    expect(lease.alloc(1 << 20)).toBeDefined();
    expect(lease.alloc(1 << 20)).toBeUndefined();
    lease.responded();
    expect(r.stats().cachedBytes).toBe(3 << 20);
  });

  test('an abandoned lease (connection closed mid-answer) gives nothing back and hands out nothing more', () => {
    const r = new BufferRecycler(1 << 30);
    const lease = new Lease(r);
    lease.alloc(1 << 20);
    lease.abandon();
    expect(lease.alloc(1 << 20)).toBeUndefined();
    lease.responded();
    expect(r.stats().cachedBytes).toBe(0);
  });
});

describe('recycled buffers over HTTP', () => {
  let app: GradserveApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const N = 96;
  const K = 256;
  const M = 200;
  const graph = {
    inputs: { x: { shape: [N, K], datatype: 'FP32' }, w: { shape: [K, M], datatype: 'FP32' } },
    nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }, { name: 'z', op: 'tanh', inputs: ['y'] }],
    outputs: ['z'],
  };
  /** Float64 reference: z = tanh(x·w) and, for cotangent g, dw = xᵀ·(g ⊙ (1 - z²)), dx = (g ⊙ (1 - z²))·wᵀ. */
  function reference(x: Float32Array, w: Float32Array, g: Float32Array) {
    const z = new Float64Array(N * M);
    const gy = new Float64Array(N * M);
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < M; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += x[i * K + k]! * w[k * M + j]!;
        z[i * M + j] = Math.tanh(s);
        gy[i * M + j] = g[i * M + j]! * (1 - Math.tanh(s) ** 2);
      }
    }
    const dw = new Float64Array(K * M);
    const dx = new Float64Array(N * K);
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let j = 0; j < M; j++) {
          dw[k * M + j] += x[i * K + k]! * gy[i * M + j]!;
          s += gy[i * M + j]! * w[k * M + j]!;
        }
        dx[i * K + k] = s;
      }
    }
    return { z, dw, dx };
  }
  const expectClose = (got: Float32Array, want: Float64Array, what: string) => {
    expect(got.length, what).toBe(want.length);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1e-3 + Math.abs(want[i]!)));
    expect(worst, what).toBeLessThan(1e-4);
  };
  const random = (n: number, seed: number) => {
    const a = new Float32Array(n);
    let s = seed >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = (s / 2 ** 32 - 0.5) * 0.2;
    }
    return a;
  };

  test('repeated framed VJPs with different numbers reuse body and result buffers and stay exact', async () => {
    app = await makeApp();
    for (let round = 0; round < 5; round++) {
      const x = random(N * K, 11 + round);
      const w = random(K * M, 101 + round);
      const g = random(N * M, 1001 + round);
      const body = { graph, inputs: { x: t('FP32', [N, K], x), w: t('FP32', [K, M], w) }, cotangents: { z: t('FP32', [N, M], g) }, wrt: ['x', 'w'], encoding: 'binary' };
      const { payload, headerLength } = frame(body);
      const r = await postFramed(app, '/v1/vjp', payload, headerLength, { accept: 'application/octet-stream' });
      const { json, section } = unframe(r);
      const blob = (o: unknown) => {
        const b = o as { binary_data_offset: number; binary_data_size: number };
        return new Float32Array(section.buffer.slice(section.byteOffset + b.binary_data_offset, section.byteOffset + b.binary_data_offset + b.binary_data_size));
      };
      const want = reference(x, w, g);
      const j = json as { outputs: Record<string, unknown>; gradients: Record<string, unknown> };
      expectClose(blob(j.outputs.z), want.z, `round ${round} z`);
      expectClose(blob(j.gradients.w), want.dw, `round ${round} dw`);
      expectClose(blob(j.gradients.x), want.dx, `round ${round} dx`);
    }
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const reused = Number(/gradserve_recycled_buffer_takes_total\{reused="true"\} (\d+)/.exec(metrics)?.[1]);
    // Each round takes a body buffer and three result buffers; from the second round on they are recycled ones.
    expect(reused).toBeGreaterThanOrEqual(4 * 4);
    expect(Number(/gradserve_recycled_buffer_bytes (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
  });
});
