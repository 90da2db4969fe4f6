/**
 * Dimensions past 2^53 - 1: JSON cannot carry them exactly and element counts built from them are not exact either.
 * Declared and sent shapes with such a dim are refused at their path; zero-size tensors with a huge sibling dim work
 * (their element count is 0 whatever the other dims are); a computed dim past the limit is 413 at its node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { numel } from '../../src/tensor/tensor.js';
import { makeApp } from './helpers.js';

const MAX = Number.MAX_SAFE_INTEGER;
const HUGE = 2 ** 60;

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

async function post(url: string, payload: unknown): Promise<{ status: number; body: any }> {
  const res = await app.inject({ method: 'POST', url, payload: payload as Record<string, unknown> });
  return { status: res.statusCode, body: res.json() };
}

const sumGraph = (shape?: number[]) => ({
  inputs: { x: shape === undefined ? { datatype: 'FP32' } : { shape, datatype: 'FP32' } },
  nodes: [{ name: 'e', op: 'exp', inputs: ['x'] }, { name: 's', op: 'sum', inputs: ['e'] }],
});

describe('dimensions past 2^53 - 1', () => {
  it('numel is 0 for any shape with a zero dim, even when the other dims overflow a double', () => {
    expect(numel([...Array<number>(20).fill(MAX), 0])).toBe(0);
    expect(numel([0, ...Array<number>(20).fill(MAX)])).toBe(0);
    expect(numel([MAX, MAX])).toBe(MAX * MAX);
  });

  it('a declared dim of 2^60 is INVALID_REQUEST at its path', async () => {
    const r = await post('/v1/grad', { graph: sumGraph([0, HUGE]), inputs: { x: { shape: [0, HUGE], data: [] } }, of: 's', wrt: ['x'] });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('INVALID_REQUEST');
    expect(r.body.errors[0].path).toBe('graph.inputs.x.shape[1]');
  });

  it.each(['grad', 'hessian', 'jacobian', 'evaluate'])('a tensor of shape [0, 2^60] is INVALID_TENSOR at its shape (%s)', async (ep) => {
    const r = await post(`/v1/${ep}`, { graph: sumGraph(), inputs: { x: { shape: [0, HUGE], datatype: 'FP32', data: [] } }, of: ep === 'jacobian' ? ['s'] : 's', wrt: ['x'] });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.code).toBe('INVALID_TENSOR');
    expect(r.body.errors[0].path).toBe('inputs.x.shape[1]');
  });

  it('a /v1/shapes spec of shape [0, 2^60] is INVALID_TENSOR', async () => {
    const r = await post('/v1/shapes', { graph: sumGraph(), inputs: { x: { shape: [0, HUGE], datatype: 'FP32' } } });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('INVALID_TENSOR');
  });

  it('a binary tensor of shape [0, 2^60] is INVALID_TENSOR', async () => {
    const json = Buffer.from(JSON.stringify({ graph: sumGraph(), inputs: { x: { shape: [0, HUGE], datatype: 'FP32', binary_data_size: 0 } }, of: 's', wrt: ['x'] }));
    const res = await app.inject({
      method: 'POST', url: '/v1/grad', payload: json,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('INVALID_TENSOR');
  });

  it.each([[[0, MAX]], [[MAX, 0]], [[MAX, MAX, 0, MAX]]])('grad and hessian of sum over a zero-size %j input: 200, zero-size results', async (shape) => {
    for (const declared of [shape, undefined]) {
      const g = await post('/v1/grad', { graph: sumGraph(declared), inputs: { x: { shape, datatype: 'FP32', data: [] } }, of: 's', wrt: ['x'] });
      expect(g.status, JSON.stringify(g.body)).toBe(200);
      expect(g.body.outputs.s.data).toEqual([0]);
      expect(g.body.gradients.x).toEqual({ shape, datatype: 'FP32', data: [] });
      const h = await post('/v1/hessian', { graph: sumGraph(declared), inputs: { x: { shape, datatype: 'FP32', data: [] } }, of: 's', wrt: ['x'] });
      expect(h.status, JSON.stringify(h.body)).toBe(200);
      expect(h.body.hessians.x.x).toEqual({ shape: [...shape, ...shape], datatype: 'FP32', data: [] });
    }
  });

  it('a computed dim past 2^53 - 1 is TOO_LARGE at its node, in every endpoint', async () => {
    const graph = {
      inputs: { x: { shape: [0, MAX], datatype: 'FP32' } },
      nodes: [{ name: 'c', op: 'concat', inputs: ['x', 'x'], attrs: { axis: 1 } }, { name: 's', op: 'sum', inputs: ['c'] }],
    };
    const x = { shape: [0, MAX], datatype: 'FP32', data: [] };
    for (const [ep, extra] of [
      ['evaluate', {}], ['grad', { of: 's', wrt: ['x'] }], ['hessian', { of: 's', wrt: ['x'] }],
      ['transform', { transform: 'grad', of: 's', wrt: ['x'] }], ['shapes', {}],
    ] as const) {
      const r = await post(`/v1/${ep}`, { graph, ...(ep === 'transform' ? {} : { inputs: { x } }), ...extra });
      expect(r.status, `${ep}: ${JSON.stringify(r.body)}`).toBe(413);
      expect(r.body.code).toBe('TOO_LARGE');
      expect(r.body.errors[0].path).toBe('graph.nodes[0]');
    }
  });
});
