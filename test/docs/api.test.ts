/**
 * docs/api.md agrees with the code: every route is documented, the error tables match the catalogue, and what the
 * page marks "not yet available" is still what a request gets today (when a feature lands, this fails until the page
 * is updated).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../src/errors.js';
import { buildApp, type GradserveApp } from '../../src/server/app.js';

const md = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

function section(title: string): string {
  const start = md.indexOf(`\n## ${title}\n`);
  expect(start, `docs/api.md has a "## ${title}" section`).toBeGreaterThanOrEqual(0);
  const end = md.indexOf('\n## ', start + 1);
  return md.slice(start, end < 0 ? undefined : end);
}

/** `| \`CODE\` | status |` rows of a markdown text: code -> status. */
function codeRows(text: string): Map<string, number> {
  return new Map([...text.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
}

const linear = {
  inputs: { x: { shape: [null, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } },
  nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }, { name: 'loss', op: 'sum', inputs: ['y'] }],
  outputs: ['y'],
};
const W = [[1, 2, 3], [4, 5, 6]];

let dir: string;
let app: GradserveApp;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gradserve-apidoc-'));
  writeFileSync(path.join(dir, 'linear.json'), JSON.stringify(linear));
  app = await buildApp({ logger: false, modelRepository: dir });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object });

describe('docs/api.md', () => {
  it('names every route of the OpenAPI document, and the operational ones', () => {
    const paths = (app.swagger() as { paths: Record<string, Record<string, unknown>> }).paths;
    const routes = Object.entries(paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(routes.length).toBeGreaterThan(15);
    for (const r of [...routes, 'GET /metrics', 'GET /openapi.json', 'GET /docs']) expect(md, r).toContain(`\`${r}\``);
  });

  it('lists every error code of the catalogue with its status, and no other as available', () => {
    const listed = codeRows(section('Errors').split('not yet emitted')[0]!);
    const catalogue = new Map(Object.entries(ERROR_CATALOGUE).map(([code, { status }]) => [code, status as number]));
    expect(listed).toEqual(catalogue);
  });

  it('lists codes as not yet emitted only while the catalogue lacks them', () => {
    const reserved = codeRows(section('Errors').split('not yet emitted')[1]!);
    expect([...reserved.keys()].sort()).toEqual(['INVALID_MODEL', 'MODEL_UNAVAILABLE', 'NOT_POSITIVE_DEFINITE', 'SINGULAR_MATRIX', 'UNSUPPORTED_MODEL']);
    for (const code of reserved.keys()) expect(Object.keys(ERROR_CATALOGUE), `${code} is emitted now: move it in docs/api.md`).not.toContain(code);
  });

  describe('what it marks not yet available is what a request gets today', () => {
    it('models by reference: "model" without "graph" is INVALID_REQUEST, beside "graph" it is ignored', async () => {
      const alone = await post('/v1/evaluate', { model: 'linear', inputs: { x: [[1, 2]], w: W } });
      expect(alone.statusCode).toBe(400);
      expect(alone.json()).toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'graph' }] });
      const both = await post('/v1/evaluate', { model: 'no-such-model', graph: linear, inputs: { x: [[1, 2]], w: W } });
      expect(both.statusCode).toBe(200);
      expect(both.json()).toMatchObject({ outputs: { y: { data: [9, 12, 15] } } });
    });

    it('models by reference: model metadata lists no parameters; an unreadable model file is 500', async () => {
      const meta = await app.inject({ method: 'GET', url: '/v2/models/linear' });
      expect(meta.statusCode).toBe(200);
      expect(meta.json()).not.toHaveProperty('parameters');
      writeFileSync(path.join(dir, 'broken.json'), '{"nodes": ');
      const broken = await app.inject({ method: 'GET', url: '/v2/models/broken/ready' });
      expect(broken.statusCode).toBe(500);
      expect(broken.json()).toHaveProperty('error');
      expect((await app.inject({ method: 'GET', url: '/v2/health/ready' })).statusCode).toBe(200);
    });

    it('ONNX import: POST /v1/import/onnx is 404 NOT_FOUND', async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/import/onnx', payload: Buffer.from([8, 7, 18, 0]), headers: { 'content-type': 'application/onnx' } });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'NOT_FOUND' });
    });

    it('batched derivatives: "batched" is ignored, a batched cotangent is SHAPE_MISMATCH', async () => {
      const base = { graph: linear, inputs: { x: [[1, 2]], w: W }, wrt: ['x'], batched: true };
      const batched = await post('/v1/vjp', { ...base, cotangents: { y: [[[1, 0, -1]], [[0, 1, 0]]] } });
      expect(batched.statusCode).toBe(422);
      expect(batched.json()).toMatchObject({ code: 'SHAPE_MISMATCH' });
      const plain = await post('/v1/vjp', { ...base, cotangents: { y: [[1, 0, -1]] } });
      expect(plain.statusCode).toBe(200);
      expect(plain.json()).toMatchObject({ gradients: { x: { shape: [1, 2], data: [-2, -2] } } });
    });

    it('batched derivatives: "per_example" is ignored, the gradient is the whole batch\'s', async () => {
      const res = await post('/v1/grad', {
        graph: linear, inputs: { x: [[1, 2], [3, 4]], w: W }, of: 'loss', wrt: ['w'], per_example: { axis: 0, inputs: ['x'] },
      });
      expect(res.statusCode).toBe(200);
      // d sum(x·w) / dw = column sums of x, broadcast over the 3 outputs: one [2, 3] gradient, not one per example
      expect(res.json()).toMatchObject({ gradients: { w: { shape: [2, 3], data: [4, 4, 4, 6, 6, 6] } } });
    });
  });
});
