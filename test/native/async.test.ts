import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { ADDON_PATH, kernels } from '../../src/kernels.js';
import type { KernelFns } from '../../src/kernels.js';
import { rng } from '../support/random.js';
import { fromTyped, mismatch, numel, randData, toTyped } from './reference.js';

type Call = { [K in keyof KernelFns]: [K, Parameters<KernelFns[K]>] }[keyof KernelFns];

function calls(): Call[] {
  const r = rng(42);
  const x = Float64Array.from(randData(r, 2 * 3 * 4, 'FP64'));
  const f = Float32Array.from(randData(r, 512 * 300, 'FP32'));
  const s = [2, 3, 4];
  return [
    ['unary', ['tanh', f]],
    ['binary', ['mul', x, s, Float64Array.from([1, 2, 3, 4]), [4]]],
    ['where', [Uint8Array.from([1, 0, 1, 0]), [4], x, s, new Float64Array([7]), [1]]],
    ['clip', [x, -0.5, null]],
    ['reduce', ['logsumexp', x, s, [0, 2]]],
    ['argReduce', ['argmin', x, s, 1]],
    ['softmax', [x, s, 1, true]],
    ['matmul', [f, [512, 300], f, [512, 300], false, true]],
    ['transpose', [f, [512, 300], [1, 0]]],
    ['broadcastTo', [x, s, [5, 2, 3, 4]]],
    ['slice', [x, s, [1, 2, 3], [-1, -2, -1], [2, 2, 3]]],
    ['sliceBackward', [Float64Array.from([1, 2, 3, 4]), [2, 2], [0, 1], [1, 1], [3, 3]]],
    ['pad', [x, s, [[1, 0], [0, 2], [1, 1]], -1]],
    ['concat', [[x, x], [s, s], 2]],
    ['gather', [x, s, new Int32Array([2, -1, 0]), [3], 1]],
    ['scatterAdd', [Float64Array.from(randData(r, 2 * 3 * 4, 'FP64')), BigInt64Array.from([0n, 0n, 2n]), [3], 1, [2, 3, 4]]],
    ['oneHot', [Int32Array.from([0, 2, 5]), [3], 4, 1, 'FP64']],
    ['cast', [toTyped('INT64', randData(r, numel(s), 'INT64')), 'FP32']],
    ['scatterAddElements', [x, s, BigInt64Array.from([0n, 2n, -1n, 1n, 0n, 0n, 2n, 2n]), [2, 1, 4], Float64Array.from(randData(r, 8, 'FP64')), 1]],
    ['roll', [f, [512, 300], [-3, 7]]],
    ['triangle', [x, s, -1, true]],
    ['sortIndices', [f, [512, 300], 1, true, 10]],
  ];
}

describe('async kernels', () => {
  it('every kernel resolves to the same result as its sync form', async () => {
    const all = calls();
    expect(new Set(all.map((c) => c[0])).size).toBe(22);
    const results = await Promise.all(
      all.map(([name, args]) => (kernels.async[name] as (...a: unknown[]) => Promise<unknown>)(...args)),
    );
    all.forEach(([name, args], i) => {
      const sync = (kernels[name] as (...a: unknown[]) => unknown)(...args);
      expect(results[i], name).toEqual(sync);
    });
  });

  it('argument errors reject (never throw synchronously) with the same code', async () => {
    let p: Promise<unknown> | undefined;
    expect(() => { p = kernels.async.binary('add', new Float32Array(2), [3], new Float32Array(2), [2]); }).not.toThrow();
    await expect(p).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/needs 3/) });
    await expect(kernels.async.gather(new Float32Array(2), [2], new Int32Array([2]), [1], 0)).rejects.toMatchObject({ code: 'INDEX_OUT_OF_RANGE' });
    await expect(kernels.async.cast(new Float64Array([1e20]), 'INT32')).rejects.toMatchObject({ code: 'INVALID_CAST' });
    await expect((kernels.async.unary as (...a: unknown[]) => Promise<unknown>)()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('concurrent matmuls on the thread pool (CBLAS called from several threads) match the sync results', async () => {
    const r = rng(9);
    const jobs = Array.from({ length: 8 }, (_, i) => {
      const n = 150 + i * 10;
      return { n, a: Float64Array.from(randData(r, n * n, 'FP64')), b: Float32Array.from(randData(r, n * n, 'FP32')) };
    });
    const got = await Promise.all(jobs.flatMap(({ n, a, b }) => [
      kernels.async.matmul(a, [n, n], a, [n, n], false, true),
      kernels.async.matmul(b, [n, n], b, [n, n], true, false),
    ]));
    // OpenBLAS may split a call differently when several run at once, so allow reassociation-level differences.
    jobs.forEach(({ n, a, b }, i) => {
      const d = kernels.matmul(a, [n, n], a, [n, n], false, true);
      const f = kernels.matmul(b, [n, n], b, [n, n], true, false);
      expect(got[2 * i]?.shape).toEqual(d.shape);
      expect(mismatch(got[2 * i]!.data, fromTyped(d.data), 1e-12, 1e-12)).toBeUndefined();
      expect(mismatch(got[2 * i + 1]!.data, fromTyped(f.data), 1e-5, 1e-4)).toBeUndefined();
    });
  });

  it('many concurrent calls all complete correctly', async () => {
    const xs = Array.from({ length: 64 }, (_, i) => new Float32Array(10_000).fill(i));
    const sums = await Promise.all(xs.map((x) => kernels.async.reduce('sum', x, [x.length], [0])));
    sums.forEach((s, i) => expect(s[0]).toBe(i * 10_000));
  });

  it('refuses a resizable input buffer, which could shrink under the worker thread (in a child: it used to segfault)', () => {
    // The buffer is shrunk right after the call returns, while the worker reads it; the sync form stays allowed.
    const script = `
      const k = require(${JSON.stringify(ADDON_PATH)});
      const ab = new ArrayBuffer(8 << 20, { maxByteLength: 8 << 20 });
      const x = new Float64Array(ab).fill(0.5);
      const sync = k.unary('tanh', x);
      const p = k.async.unary('tanh', x);
      ab.resize(0);
      p.then((o) => console.log(JSON.stringify({ resolved: o.length })),
             (e) => console.log(JSON.stringify({ code: e.code, message: e.message, sync: sync.length, first: sync[0] })));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { code: string; message: string; sync: number; first: number };
    expect(out.code).toBe('INVALID_ARGUMENT');
    expect(out.message).toContain('resizable ArrayBuffer');
    expect(out.sync).toBe(1 << 20);
    expect(out.first).toBeCloseTo(Math.tanh(0.5), 6);
  });
});
