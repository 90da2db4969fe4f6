/**
 * Answers too large to send are refused before anything runs: 413 TOO_LARGE from the shapes the plan returns and the
 * response limits (GRADSERVE_RESPONSE_LIMIT for JSON and b64 text, GRADSERVE_BINARY_RESPONSE_LIMIT for binary
 * framing), with a message that points to "encoding": "binary". Building such a JSON answer used to abort the process
 * (a JavaScript array of 2^27 numbers) or answer 500.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { SETTINGS, loadConfig } from '../../src/server/config.js';
import { MAX_TEXT_RESPONSE_BYTES, tensorResponseBytes } from '../../src/server/response_size.js';
import { makeApp } from './helpers.js';

/** y = broadcast_to(x, [n]): a large answer from a one-element request. */
const big = (n: number, dtype = 'FP32') => ({
  inputs: { x: { shape: [1], datatype: dtype } },
  nodes: [{ name: 'y', op: 'broadcast_to', inputs: ['x'], attrs: { shape: [n] } }, { name: 's', op: 'sum', inputs: ['y'] }],
  outputs: ['y'],
});

async function executedNodes(app: GradserveApp): Promise<number> {
  return (await app.gradserve.metrics.nodes.get()).values[0]?.value ?? 0;
}

describe('response limits', () => {
  let app: GradserveApp;
  beforeAll(async () => {
    app = await makeApp({ requestMemoryBytes: 8 * 1024 ** 3, serverMemoryBytes: 8 * 1024 ** 3 });
  });
  afterAll(async () => {
    await app.close();
  });

  it.each([
    ['2^27 FP32 as JSON', 2 ** 27, 'json'],
    ['50M FP32 as JSON', 50_000_000, 'json'],
    ['2^28 FP32 as b64', 2 ** 28, 'b64'],
  ] as const)('%s: 413 before anything runs, suggesting binary', async (_label, n, encoding) => {
    const before = await executedNodes(app);
    const res = await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: big(n), inputs: { x: [1] }, encoding } });
    expect(res.statusCode, res.body).toBe(413);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json() as { code: string; detail: string };
    expect(body.code).toBe('TOO_LARGE');
    expect(body.detail).toContain('"encoding": "binary"');
    expect(body.detail).toContain('GRADSERVE_RESPONSE_LIMIT');
    expect(body.detail).toContain(`y [${n}] FP32`);
    expect(await executedNodes(app)).toBe(before);
  });

  it('counts every tensor of the answer: gradients, hvp, jacobian blocks', async () => {
    const small = await makeApp({ responseLimitBytes: 1_000_000 });
    try {
      const n = 50_000; // 1.25 MB estimated as JSON per tensor of this shape
      const graph = { inputs: { x: { shape: [n], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'sin', inputs: ['x'] }, { name: 's', op: 'sum', inputs: ['y'] }], outputs: ['s'] };
      const x = { shape: [n], datatype: 'FP32', b64: Buffer.alloc(n * 4).toString('base64') };
      for (const [ep, extra] of [['grad', { of: 's', wrt: ['x'] }], ['hvp', { of: 's', vectors: { x } }], ['jacobian', { of: ['s'], wrt: ['x'] }]] as const) {
        const res = await small.inject({ method: 'POST', url: `/v1/${ep}`, payload: { graph, inputs: { x }, ...extra } });
        expect(res.statusCode, `${ep}: ${res.body.slice(0, 300)}`).toBe(413);
        expect(res.json().detail).toContain('"encoding": "binary"');
        const framed = await small.inject({ method: 'POST', url: `/v1/${ep}`, payload: { graph, inputs: { x }, ...extra, encoding: 'binary' } });
        expect(framed.statusCode, `${ep} binary`).toBe(200);
      }
    } finally {
      await small.close();
    }
  });

  it('the same answer in binary framing runs (it has its own, larger limit)', async () => {
    const n = 12_000_000;
    const res = await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: big(n), inputs: { x: [2] }, encoding: 'binary' } });
    expect(res.statusCode).toBe(200);
    expect(Number(res.headers['content-length'])).toBeGreaterThan(n * 4);
  });

  it('gradcheck, whose answer holds no tensors, is not limited by its gradients', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/gradcheck', payload: { graph: big(4), inputs: { x: [1] }, of: 's', wrt: ['x'] } });
    expect(res.statusCode).toBe(200);
  });
});

describe('response limits are settings', () => {
  it('GRADSERVE_RESPONSE_LIMIT and GRADSERVE_BINARY_RESPONSE_LIMIT (and their flags) set them', () => {
    expect(SETTINGS.map((s) => s.flag)).toEqual(expect.arrayContaining(['--response-limit', '--binary-response-limit']));
    const c = loadConfig({ GRADSERVE_RESPONSE_LIMIT: '1MiB' }, ['--binary-response-limit', '2MiB']);
    expect([c.responseLimitBytes, c.binaryResponseLimitBytes]).toEqual([1024 ** 2, 2 * 1024 ** 2]);
  });

  it('size estimates: 25 bytes per float as JSON, 4/3 as b64, the bytes themselves in binary', () => {
    expect(tensorResponseBytes([1000], 'FP32', 'json')).toBe(64 + 25_000);
    expect(tensorResponseBytes([3000], 'FP32', 'b64')).toBe(64 + 16_000);
    expect(tensorResponseBytes([1000], 'FP64', 'binary')).toBe(64 + 8000);
    expect(MAX_TEXT_RESPONSE_BYTES).toBeLessThan(2 ** 29 - 24); // V8's longest string
  });

  it('small limits apply: text and binary separately, /v1 and /v2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gradserve-limit-'));
    writeFileSync(join(dir, 'big.json'), JSON.stringify(big(5000)));
    const app = await makeApp({ responseLimitBytes: 100_000, binaryResponseLimitBytes: 200_000, modelRepository: dir });
    try {
      const post = (encoding: string, n: number) => app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: big(n), inputs: { x: [1] }, encoding } });
      expect((await post('json', 3000)).statusCode).toBe(200); // 75 kB estimated
      expect((await post('json', 5000)).statusCode).toBe(413);
      expect((await post('b64', 5000)).statusCode).toBe(200);
      expect((await post('binary', 40_000)).statusCode).toBe(200);
      const over = await post('binary', 60_000);
      expect(over.statusCode).toBe(413);
      expect(over.json().detail).toContain('GRADSERVE_BINARY_RESPONSE_LIMIT');
      // Accept: application/octet-stream selects binary framing, and its limit
      const accepted = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { accept: 'application/octet-stream' }, payload: { graph: big(40_000), inputs: { x: [1] } } });
      expect(accepted.statusCode).toBe(200);
      const infer = (params: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v2/models/big/infer', payload: { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }], ...params } });
      const refused = await infer({});
      expect(refused.statusCode).toBe(413);
      expect(refused.json().error).toContain('"encoding": "binary"');
      expect((await infer({ parameters: { binary_data_output: true } })).statusCode).toBe(200);
      expect((await infer({ outputs: [{ name: 'y', parameters: { binary_data: true } }] })).statusCode).toBe(200);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
