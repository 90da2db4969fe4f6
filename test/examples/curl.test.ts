/**
 * examples/curl/seed.sh against a live server: every answer's numbers are checked against the hand-computed seed
 * example and against the expected output written down next to the script. curl and sh are required toolchains.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startServer, type LiveServer } from './live-server.js';
import { expectClose, seedReference } from './reference.js';

const DIR = join(import.meta.dirname, '../../examples/curl');

let server: LiveServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

/** `# POST /path` header lines, each followed by the answer (JSON, then for the error call an `HTTP nnn` line). */
export function parseBlocks(out: string): { title: string; body: Record<string, any>; http?: number }[] {
  const blocks: { title: string; body: Record<string, any>; http?: number }[] = [];
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('# ')) continue;
    const title = lines[i]!.slice(2).trim();
    const body = JSON.parse(lines[i + 1]!);
    const http = /^HTTP (\d+)$/.exec(lines[i + 2] ?? '')?.[1];
    blocks.push({ title, body, http: http === undefined ? undefined : Number(http) });
  }
  return blocks;
}

function b64Floats(s: string): number[] {
  const b = Buffer.from(s, 'base64');
  return Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}

function checkSeedAnswers(blocks: ReturnType<typeof parseBlocks>) {
  const ref = seedReference();
  const ones = seedReference([1, 1, 1]);
  expect(blocks.map((b) => b.title)).toEqual([
    'POST /v1/evaluate', 'POST /v1/vjp', 'POST /v1/grad', 'POST /v1/jacobian', 'POST /v1/evaluate', 'POST /v1/grad (error)',
  ]);
  const [ev, vjp, grad, jac, evB64, err] = blocks as [any, any, any, any, any, any];
  expect(ev.body.outputs.y.shape).toEqual([1, 3]);
  expectClose(ev.body.outputs.y.data, ref.y);

  expect(vjp.body.gradients.x.shape).toEqual([1, 2]);
  expectClose(vjp.body.gradients.x.data, ref.dx);
  expect(vjp.body.gradients.w.shape).toEqual([2, 3]);
  expectClose(vjp.body.gradients.w.data, ref.dw);

  expectClose(grad.body.outputs.loss.data, [ref.y.reduce((a: number, b: number) => a + b)]);
  expectClose(grad.body.gradients.x.data, ones.dx);
  expectClose(grad.body.gradients.w.data, ones.dw);

  expect(jac.body.jacobians.y.x.shape).toEqual([1, 3, 1, 2]);
  expectClose(jac.body.jacobians.y.x.data, ref.jacYX);
  expect(['forward', 'reverse']).toContain(jac.body.mode);

  expect(evB64.body.outputs.y.datatype).toBe('FP32');
  expectClose(b64Floats(evB64.body.outputs.y.b64), ref.y);

  expect(err.http).toBe(422);
  expect(err.body.code).toBe('NOT_SCALAR');
  expect(err.body.status).toBe(422);
  expect(err.body.detail).toContain('y');
}

describe('curl examples (sh + curl)', () => {
  it('seed.sh: evaluate, vjp, grad, jacobian, b64 and a problem+json error, checked by value', async () => {
    const r = await run('sh', [join(DIR, 'seed.sh'), server.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    checkSeedAnswers(parseBlocks(r.stdout));
  });

  it('expected-output.txt (what the docs show) holds the same numbers', () => {
    checkSeedAnswers(parseBlocks(readFileSync(join(DIR, 'expected-output.txt'), 'utf8')));
  });
});
