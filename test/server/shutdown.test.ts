/**
 * SIGTERM with a request still running past --shutdown-timeout-ms: the request is answered 503 OVERLOADED with
 * Retry-After (problem+json) before the process exits 0, so its client retries instead of seeing a connection reset.
 * Runs `gradserve serve` from the sources in a child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { engineWith, linearGraph, makeApp, sleepUnlessAborted } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
let child: ChildProcess | undefined;

afterEach(() => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** Starts the server on a free port; resolves with its base URL and a promise of its exit code. */
async function start(args: string[]): Promise<{ base: string; exited: Promise<number | null>; log: () => string }> {
  const p = spawn(process.execPath, ['--import', './test/support/ts-register.mjs', 'src/cli.ts', 'serve', '--host', '127.0.0.1', '--port', '0', ...args], {
    cwd: root,
    env: { ...process.env, UV_THREADPOOL_SIZE: '2', GRADSERVE_WORKERS: '2', GRADSERVE_BLAS_THREADS: '1', GRADSERVE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = p;
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  const base = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no listening line in 30 s:\n${out}`)), 30_000);
    const check = (): void => {
      const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    };
    p.stdout!.on('data', check);
    p.once('exit', () => reject(new Error(`exited before listening:\n${out}`)));
  });
  return { base, exited, log: () => out };
}

/** Many chained 512×512 products: seconds of work from a tiny body (cancelled between products). */
function slowGraph(products: number) {
  const n = 512;
  const nodes: { name: string; op: string; inputs: string[]; attrs?: Record<string, unknown> }[] = [
    { name: 'a', op: 'broadcast_to', inputs: ['s'], attrs: { shape: [n, n] } },
  ];
  let prev = 'a';
  for (let i = 0; i < products; i++) {
    nodes.push({ name: `m${i}`, op: 'matmul', inputs: [prev, 'a'] });
    prev = `m${i}`;
  }
  nodes.push({ name: 'f', op: 'sum', inputs: [prev] });
  return { inputs: { s: { shape: [], datatype: 'FP32' } }, nodes, outputs: ['f'] };
}

describe('shutdown past its timeout', () => {
  it('answers in-flight requests 503 OVERLOADED with Retry-After, then exits 0', async () => {
    const { base, exited, log } = await start(['--shutdown-timeout-ms', '500', '--request-timeout-ms', '120000']);
    const pending = fetch(`${base}/v1/evaluate`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: slowGraph(4000), inputs: { s: 1e-6 } }),
    });
    // let the request reach the engine
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    child!.kill('SIGTERM');
    const res = await pending;
    expect(res.status, log()).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('OVERLOADED');
    expect(body.detail).toContain('shutting down');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(log()).toContain('answered 503');
  });
});

describe('answerInFlight', () => {
  it('cancels running requests with 503 OVERLOADED + Retry-After', async () => {
    let started = 0;
    const engine = await engineWith({
      evaluate: async (_g, _i, _o, opts) => {
        started++;
        await sleepUnlessAborted(30_000, opts?.signal);
        throw new Error('not reached');
      },
    });
    const app = await makeApp({ engine });
    try {
      const running = app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } } });
      while (started === 0) await new Promise((r) => setTimeout(r, 5));
      expect(await app.gradserve.answerInFlight()).toBe(1);
      const res = await running;
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json().code).toBe('OVERLOADED');
      expect(await app.gradserve.answerInFlight()).toBe(0);
    } finally {
      await app.close();
    }
  });
});
