/**
 * docs/linalg.md's worked example: the graph the document shows is the one of test/fixtures/linalg/gp_lml.json, and
 * its log marginal likelihood and gradient with respect to the length scale (and signal scale) match PyTorch's
 * (scripts/gen_gp_fixture.py), directly and over HTTP; the Hessian the document mentions agrees with differences of
 * the gradient.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grad, hessian } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import type { GradserveApp } from '../../src/server/app.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { makeApp } from '../server/helpers.js';

const doc = readFileSync(new URL('../../docs/linalg.md', import.meta.url), 'utf8');
const fixture = JSON.parse(readFileSync(new URL('../fixtures/linalg/gp_lml.json', import.meta.url), 'utf8')) as {
  graph: Graph;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  of: string;
  value: number;
  gradients: Record<string, number>;
};

const inputs: Record<string, Tensor> = Object.fromEntries(Object.entries(fixture.inputs).map(([k, v]) => [k, tensor('FP64', v.shape, v.data)]));
const wrt = ['length_scale', 'signal_scale'];
const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(1e-3, Math.abs(b));

describe('docs/linalg.md: the Gaussian-process example', () => {
  it('shows the graph the PyTorch fixture was computed for', () => {
    const section = doc.slice(doc.indexOf('## Worked example'));
    const block = /```json\n([\s\S]*?)\n```/.exec(section);
    expect(block, 'a json block in the worked example').not.toBeNull();
    expect(JSON.parse(block![1]!)).toEqual(fixture.graph);
  });

  it('log marginal likelihood and its gradient agree with PyTorch', async () => {
    const r = await grad(fixture.graph, inputs, 'lml', wrt);
    expect(rel(Number(r.outputs.lml!.data[0]), fixture.value)).toBeLessThanOrEqual(1e-10);
    for (const w of wrt) expect(rel(Number(r.gradients[w]!.data[0]), fixture.gradients[w]!), w).toBeLessThanOrEqual(1e-10);
  });

  it('the Hessian in the length scale agrees with central differences of the gradient', async () => {
    const h = await hessian(fixture.graph, inputs, 'lml', ['length_scale']);
    const hll = Number(h.hessians.length_scale!.length_scale!.data[0]);
    const eps = 1e-5;
    const at = async (l: number): Promise<number> =>
      Number((await grad(fixture.graph, { ...inputs, length_scale: tensor('FP64', [], [l]) }, 'lml', ['length_scale'])).gradients.length_scale!.data[0]);
    const l = Number(inputs.length_scale!.data[0]);
    const fd = ((await at(l + eps)) - (await at(l - eps))) / (2 * eps);
    expect(rel(hll, fd)).toBeLessThanOrEqual(1e-6);
  });

  describe('over HTTP', () => {
    let app: GradserveApp;
    beforeAll(async () => { app = await makeApp(); });
    afterAll(async () => { await app.close(); });
    it('POST /v1/grad returns the same value and gradients', async () => {
      const r = await app.inject({
        method: 'POST', url: '/v1/grad', headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ graph: fixture.graph, inputs: fixture.inputs, of: 'lml', wrt }),
      });
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json() as { outputs: Record<string, { data: number[] }>; gradients: Record<string, { data: number[] }> };
      expect(rel(body.outputs.lml!.data[0]!, fixture.value)).toBeLessThanOrEqual(1e-10);
      for (const w of wrt) expect(rel(body.gradients[w]!.data[0]!, fixture.gradients[w]!), w).toBeLessThanOrEqual(1e-10);
    });
  });
});
