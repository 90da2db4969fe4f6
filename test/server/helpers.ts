/** Shared helpers for the HTTP tests. */
import type { Engine } from '../../src/engine.types.js';
import { buildApp, type BuildOptions, type GradserveApp } from '../../src/server/app.js';

export async function makeApp(opts: BuildOptions = {}): Promise<GradserveApp> {
  const app = await buildApp({ logger: false, ...opts });
  await app.ready();
  return app;
}

/** The real engine, loaded the same way buildApp does by default. */
export async function realEngine(): Promise<Engine> {
  return (await import('../../src/index.js')).engine;
}

/**
 * The real engine with some methods replaced: used to provoke conditions no valid graph produces quickly (a bug, a
 * very slow run), while every other method stays real.
 */
export async function engineWith(overrides: Partial<Engine>): Promise<Engine> {
  const base = await realEngine();
  return { ...base, ...overrides } as Engine;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts (a cooperative long run). */
export function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

export const linearGraph = {
  inputs: { x: { shape: [null, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } },
  nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }],
  outputs: ['y'],
};

export function b64(a: ArrayBufferView): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

export function fromB64(s: string, Ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array): number[] {
  const buf = Buffer.from(s, 'base64');
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  return Array.from(new Ctor(copy.buffer));
}

/** Plain matrix product of row-major arrays, as the independent reference for linear-layer checks. */
export function matmul(a: number[], b: number[], n: number, k: number, m: number): number[] {
  const out = new Array<number>(n * m).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let t = 0; t < k; t++) out[i * m + j]! += a[i * k + t]! * b[t * m + j]!;
  return out;
}

export function transpose(a: number[], rows: number, cols: number): number[] {
  const out = new Array<number>(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

export function closeTo(actual: number[], expected: number[], tol = 1e-5): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  actual.forEach((v, i) => {
    const e = expected[i]!;
    if (!(Math.abs(v - e) <= tol * (1 + Math.abs(e)))) throw new Error(`element ${i}: ${v} != ${e}`);
  });
}
