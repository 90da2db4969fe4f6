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
  describe('what it marks available answers as the page says', () => {
    it('batched derivatives: a batched cotangent gives one gradient per member, with the Gradserve-Batching header', async () => {
      const res = await post('/v1/vjp', { graph: linear, inputs: { x: [[1, 2]], w: W }, wrt: ['x'], batched: true, cotangents: { y: [[[1, 0, -1]], [[0, 1, 0]]] } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ gradients: { x: { shape: [2, 1, 2], data: [-2, -2, 2, 5] } } });
      expect(res.headers['gradserve-batching']).toMatch(/^vectorized; size=2;/);
      expect(section('Batched derivatives')).not.toContain('Not yet available');
      expect(section('Batched derivatives')).toContain('`Gradserve-Batching`');
    });

    it('batched derivatives: "per_example" gives one gradient per example', async () => {
      const res = await post('/v1/grad', {
        graph: linear, inputs: { x: [[1, 2], [3, 4]], w: W }, of: 'loss', wrt: ['w'], per_example: { axis: 0, inputs: ['x'] },
      });
      expect(res.statusCode).toBe(200);
      // d sum(x_i·w) / dw = x_i broadcast over the 3 outputs, for each example i
      expect(res.json()).toMatchObject({ gradients: { w: { shape: [2, 2, 3], data: [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4] } } });
    });

    it('render: the 413 example of the page is what a request gets', async () => {
      const shown = /e\.g\. `(the picture would have [^`]+)`/.exec(section('Render and the playground').replace(/\n\s*/g, ' '))?.[1];
      expect(shown).toBeDefined();
      // 56 layers of matmul + relu and a sum, with the backward graph: 451 drawn values
      const inputs: Record<string, { shape: number[] }> = { x: { shape: [4, 3] } };
      const nodes: { name: string; op: string; inputs: string[] }[] = [];
      let h = 'x';
      for (let i = 0; i < 56; i++) {
        inputs[`w${i}`] = { shape: [3, 3] };
        nodes.push({ name: `z${i}`, op: 'matmul', inputs: [h, `w${i}`] }, { name: `h${i}`, op: 'relu', inputs: [`z${i}`] });
        h = `h${i}`;
      }
      nodes.push({ name: 'loss', op: 'sum', inputs: [h] });
      const wrt = Object.keys(inputs).filter((k) => k !== 'x');
      const res = await post('/v1/render', { graph: { inputs, nodes }, transform: 'grad', of: 'loss', wrt });
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ code: 'TOO_LARGE', detail: shown });
    });

    it('batched derivatives: the 413 example of the page is what a request gets', async () => {
      const shown = /`(batched vjp of B = 1000 needs [^`]+)`/.exec(section('Batched derivatives').replace(/\n\s*/g, ' '))?.[1];
      expect(shown).toBeDefined();
      const small = await buildApp({ logger: false, requestMemoryBytes: 4096 });
      try {
        const cotangents = { y: Array.from({ length: 1000 }, () => [[1, 0, -1]]) };
        const res = await small.inject({ method: 'POST', url: '/v1/vjp', payload: { graph: linear, inputs: { x: [[1, 2]], w: W }, cotangents, wrt: ['x', 'w'], batched: true } });
        expect(res.statusCode).toBe(413);
        expect(res.json()).toMatchObject({ code: 'TOO_LARGE', detail: shown });
      } finally {
        await small.close();
      }
    });
  });
});
