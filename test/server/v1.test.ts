/** Every v1 endpoint through app.inject against the real engine, values checked against independent references. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { b64, closeTo, fromB64, linearGraph, makeApp, matmul, transpose } from './helpers.js';

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

async function post(url: string, payload: unknown) {
  const r = await app.inject({ method: 'POST', url, payload: payload as object });
  return { status: r.statusCode, body: r.json(), headers: r.headers };
}

// f(x) = sum(x * x * x): grad 3x^2, Hessian diag(6x).
const cubeGraph = {
  inputs: { x: { shape: [3], datatype: 'FP64' } },
  nodes: [
    { name: 'x2', op: 'mul', inputs: ['x', 'x'] },
    { name: 'x3', op: 'mul', inputs: ['x2', 'x'] },
    { name: 'f', op: 'sum', inputs: ['x3'] },
  ],
  outputs: ['f'],
};
const xs = [1, -2, 0.5];

describe('seed example: N=1, D=2, M=3 linear layer through /v1/vjp', () => {
  it('returns y = x·w, dL/dx = dy·wᵀ and dL/dw = xᵀ·dy', async () => {
    const x = [0.5, -1.5];
    const w = [1, 2, 3, 4, 5, 6];
    const dy = [1, -2, 0.25];
    const { status, body } = await post('/v1/vjp', {
      graph: linearGraph,
      inputs: { x: { shape: [1, 2], datatype: 'FP32', data: x }, w: { shape: [2, 3], datatype: 'FP32', data: w } },
      cotangents: { y: { shape: [1, 3], datatype: 'FP32', data: dy } },
      wrt: ['x', 'w'],
    });
    expect(status).toBe(200);
    expect(body.outputs.y.shape).toEqual([1, 3]);
    expect(body.outputs.y.datatype).toBe('FP32');
    closeTo(body.outputs.y.data, matmul(x, w, 1, 2, 3));
    expect(body.gradients.x.shape).toEqual([1, 2]);
    closeTo(body.gradients.x.data, matmul(dy, transpose(w, 2, 3), 1, 3, 2));
    expect(body.gradients.w.shape).toEqual([2, 3]);
    closeTo(body.gradients.w.data, matmul(transpose(x, 1, 2), dy, 2, 1, 3));
  });

  it('gives the same numbers in b64, with b64 inputs', async () => {
    const x = new Float32Array([0.5, -1.5]);
    const w = new Float32Array([1, 2, 3, 4, 5, 6]);
    const { status, body } = await post('/v1/vjp', {
      graph: linearGraph,
      inputs: { x: { shape: [1, 2], datatype: 'FP32', b64: b64(x) }, w: { shape: [2, 3], datatype: 'FP32', b64: b64(w) } },
      cotangents: { y: [[1, -2, 0.25]] },
      wrt: ['x', 'w'],
      encoding: 'b64',
    });
    expect(status).toBe(200);
    expect(body.gradients.x.data).toBeUndefined();
    closeTo(fromB64(body.gradients.x.b64), matmul([1, -2, 0.25], transpose([1, 2, 3, 4, 5, 6], 2, 3), 1, 3, 2));
    closeTo(fromB64(body.outputs.y.b64), matmul([0.5, -1.5], [1, 2, 3, 4, 5, 6], 1, 2, 3));
  });
});

describe('/v1/transform', () => {
  it('writes datatypes in the upper-case form, whatever spelling the request used', async () => {
    const graph = {
      inputs: { a: { shape: [null], datatype: 'float64' } },
      constants: { two: { shape: [], datatype: 'float64', data: [2] } },
      nodes: [{ name: 'm', op: 'mul', inputs: ['a', 'two'] }, { name: 'b', op: 'sum', inputs: ['m'] }],
      outputs: ['b'],
    };
    const { status, body } = await post('/v1/transform', { graph, transform: 'grad', of: 'b', wrt: ['a'] });
    expect(status).toBe(200);
    expect(body.graph.inputs.a).toEqual({ shape: [null], datatype: 'FP64' });
    expect(body.graph.constants.two.datatype).toBe('FP64');
  });

  it('a grad whose value takes its shape from an input without one asks for that shape', async () => {
    const graph = { inputs: { a: { datatype: 'FP64' } }, nodes: [{ name: 'b', op: 'exp', inputs: ['a'] }], outputs: ['b'] };
    const { status, body } = await post('/v1/transform', { graph, transform: 'grad', of: 'b', wrt: ['a'] });
    expect(status).toBe(422);
    expect(body.code).toBe('NOT_SCALAR');
    expect(body.detail).not.toMatch(/None/);
    expect(body.errors.map((e: { path: string }) => e.path)).toEqual(['of', 'graph.inputs.a']);
  });
});

describe('/v1/evaluate', () => {
  it('accepts flat, nested and bare tensors alike', async () => {
    const forms = [
      { x: { shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }, w: { shape: [2, 3], datatype: 'FP32', data: [1, 0, 0, 0, 1, 0] } },
      { x: { shape: [2, 2], datatype: 'float32', data: [[1, 2], [3, 4]] }, w: { shape: [2, 3], data: [[1, 0, 0], [0, 1, 0]] } },
      { x: [[1, 2], [3, 4]], w: [[1, 0, 0], [0, 1, 0]] },
    ];
    for (const inputs of forms) {
      const { status, body } = await post('/v1/evaluate', { graph: linearGraph, inputs });
      expect(status).toBe(200);
      expect(body.outputs.y).toEqual({ shape: [2, 3], datatype: 'FP32', data: [1, 2, 0, 3, 4, 0] });
    }
  });

  it('returns only the requested outputs', async () => {
    const { body } = await post('/v1/evaluate', { graph: cubeGraph, inputs: { x: xs }, outputs: ['x2'] });
    expect(Object.keys(body.outputs)).toEqual(['x2']);
    expect(body.outputs.x2.datatype).toBe('FP64');
    closeTo(body.outputs.x2.data, xs.map((v) => v * v));
  });

  it('carries non-finite values as strings both ways', async () => {
    const g = { inputs: { a: { datatype: 'FP64' } }, nodes: [{ name: 'r', op: 'reciprocal', inputs: ['a'] }], outputs: ['r'] };
    const { status, body } = await post('/v1/evaluate', { graph: g, inputs: { a: { shape: [4], datatype: 'FP64', data: [0, 'Infinity', 'NaN', 2] } } });
    expect(status).toBe(200);
    expect(body.outputs.r.data).toEqual(['Infinity', 0, 'NaN', 0.5]);
  });

  it('writes BOOL and INT outputs as JSON booleans and integers', async () => {
    const g = {
      inputs: { a: { datatype: 'FP32' } },
      nodes: [{ name: 'gt', op: 'greater', inputs: ['a', 'zero'] }, { name: 'i', op: 'argmax', inputs: ['a'] }],
      constants: { zero: { shape: [], datatype: 'FP32', data: [0] } },
      outputs: ['gt', 'i'],
    };
    const { body } = await post('/v1/evaluate', { graph: g, inputs: { a: [-1, 3, 2] } });
    expect(body.outputs.gt).toEqual({ shape: [3], datatype: 'BOOL', data: [false, true, true] });
    expect(body.outputs.i).toEqual({ shape: [], datatype: 'INT64', data: [1] });
  });
});

describe('derivative endpoints', () => {
  it('/v1/grad: gradient of a scalar, with outputs', async () => {
    const { status, body } = await post('/v1/grad', { graph: cubeGraph, inputs: { x: xs }, of: 'f', wrt: ['x'] });
    expect(status).toBe(200);
    closeTo(body.outputs.f.data, [xs.reduce((s, v) => s + v ** 3, 0)]);
    expect(body.gradients.x.shape).toEqual([3]);
    expect(body.gradients.x.datatype).toBe('FP64');
    closeTo(body.gradients.x.data, xs.map((v) => 3 * v * v));
  });

  it('/v1/grad: `outputs` includes `of` when it is not a graph output, and unrelated wrt get zeros', async () => {
    const g = { ...cubeGraph, inputs: { ...cubeGraph.inputs, u: { shape: [2], datatype: 'FP64' } }, outputs: ['x2'] };
    const { status, body } = await post('/v1/grad', { graph: g, inputs: { x: xs, u: [5, 6] }, of: 'f', wrt: ['x', 'u'] });
    expect(status).toBe(200);
    expect(Object.keys(body.outputs).sort()).toEqual(['f', 'x2']);
    expect(body.gradients.u).toEqual({ shape: [2], datatype: 'FP64', data: [0, 0] });
  });

  it('/v1/jvp: tangent of x·w along dx is dx·w', async () => {
    const x = [1, 2];
    const w = [1, 2, 3, 4, 5, 6];
    const dx = [0.5, -1];
    const { status, body } = await post('/v1/jvp', {
      graph: linearGraph,
      inputs: { x: [x], w: { shape: [2, 3], data: w } },
      tangents: { x: [dx] },
    });
    expect(status).toBe(200);
    closeTo(body.outputs.y.data, matmul(x, w, 1, 2, 3));
    expect(body.tangents.y.shape).toEqual([1, 3]);
    closeTo(body.tangents.y.data, matmul(dx, w, 1, 2, 3));
  });

  it('/v1/hvp: Hessian of sum(x^3) times v is 6·x·v', async () => {
    const v = [1, 1, -2];
    const { status, body } = await post('/v1/hvp', { graph: cubeGraph, inputs: { x: xs }, of: 'f', vectors: { x: v } });
    expect(status).toBe(200);
    closeTo(body.gradients.x.data, xs.map((a) => 3 * a * a));
    closeTo(body.hvp.x.data, xs.map((a, i) => 6 * a * v[i]!));
  });

  it('/v1/hessian: diag(6x) with shape x.shape ++ x.shape', async () => {
    const { status, body } = await post('/v1/hessian', { graph: cubeGraph, inputs: { x: xs }, of: 'f', wrt: ['x'] });
    expect(status).toBe(200);
    expect(body.hessians.x.x.shape).toEqual([3, 3]);
    const expected = [0, 1, 2].flatMap((i) => [0, 1, 2].map((j) => (i === j ? 6 * xs[i]! : 0)));
    closeTo(body.hessians.x.x.data, expected);
  });

  it('/v1/jacobian: J of x·w wrt x, with the mode chosen and reported', async () => {
    const w = [1, 2, 3, 4, 5, 6];
    const { status, body } = await post('/v1/jacobian', {
      graph: linearGraph, inputs: { x: [[1, 2]], w: { shape: [2, 3], data: w } }, of: ['y'], wrt: ['x'],
    });
    expect(status).toBe(200);
    // y has 3 elements, x has 2: fewer inputs than outputs, so auto picks forward.
    expect(body.mode).toBe('forward');
    const J = body.jacobians.y.x;
    expect(J.shape).toEqual([1, 3, 1, 2]);
    // dy[0,j]/dx[0,k] = w[k, j]
    closeTo(J.data, [0, 1, 2].flatMap((j) => [0, 1].map((k) => w[k * 3 + j]!)));
    const rev = await post('/v1/jacobian', {
      graph: linearGraph, inputs: { x: [[1, 2]], w: { shape: [2, 3], data: w } }, of: ['y'], wrt: ['x'], mode: 'reverse',
    });
    expect(rev.body.mode).toBe('reverse');
    closeTo(rev.body.jacobians.y.x.data, J.data);
  });

  it('/v1/gradcheck: analytic and numeric gradients agree', async () => {
    const { status, body } = await post('/v1/gradcheck', { graph: cubeGraph, inputs: { x: xs }, of: 'f', wrt: ['x'] });
    expect(status).toBe(200);
    expect(body.ok).toBe(true);
    expect(body.perInput.x.ok).toBe(true);
    expect(typeof body.maxAbsError).toBe('number');
    expect(body.maxAbsError).toBeLessThan(1e-5);
  });
});

describe('graph-only endpoints', () => {
  it('/v1/transform: the grad graph evaluates to the gradient', async () => {
    const t = await post('/v1/transform', { graph: cubeGraph, transform: 'grad', of: 'f', wrt: ['x'] });
    expect(t.status).toBe(200);
    expect(t.body.graph.outputs).toEqual(['grad:x']);
    const ev = await post('/v1/evaluate', { graph: t.body.graph, inputs: { x: xs } });
    expect(ev.status).toBe(200);
    closeTo(ev.body.outputs['grad:x'].data, xs.map((v) => 3 * v * v));
  });

  it('/v1/transform: vjp adds cotangent inputs', async () => {
    const t = await post('/v1/transform', { graph: linearGraph, transform: 'vjp', of: ['y'], wrt: ['w'] });
    expect(t.status).toBe(200);
    expect(Object.keys(t.body.graph.inputs)).toContain('cotangent:y');
    expect(t.body.graph.outputs).toEqual(['grad:w']);
  });

  it('/v1/shapes: shapes, flops and peak bytes without data', async () => {
    const { status, body } = await post('/v1/shapes', {
      graph: linearGraph,
      inputs: { x: { shape: [4, 2], datatype: 'FP32' }, w: { shape: [2, 3] } },
    });
    expect(status).toBe(200);
    expect(body.values.y).toEqual({ shape: [4, 3], datatype: 'FP32' });
    expect(body.values.x).toEqual({ shape: [4, 2], datatype: 'FP32' });
    expect(body.flops).toBeGreaterThan(0);
    expect(body.peakBytes).toBeGreaterThanOrEqual((8 + 6 + 12) * 4);
  });

  it('/v1/ops: the catalogue with attrs as JSON Schema and conventions', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/ops' });
    expect(r.statusCode).toBe(200);
    const ops = r.json().ops as { name: string; attrs: { type?: string }; differentiable: boolean; conventions: string[] }[];
    const names = ops.map((o) => o.name);
    for (const n of ['add', 'matmul', 'sum', 'relu', 'softmax_cross_entropy']) expect(names).toContain(n);
    const relu = ops.find((o) => o.name === 'relu')!;
    expect(relu.differentiable).toBe(true);
    expect(relu.conventions.join(' ')).toMatch(/relu'\(0\) = 0/);
    expect(ops.find((o) => o.name === 'sum')!.attrs.type).toBe('object');
  });
});

describe('large responses', () => {
  it('writes a large b64 response as valid JSON with the right content type', async () => {
    const n = 100_000;
    const x = Float32Array.from({ length: n }, (_, i) => i / 7);
    const g = { inputs: { x: { shape: [n], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }], outputs: ['y'] };
    const r = await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: g, inputs: { x: { shape: [n], datatype: 'FP32', b64: b64(x) } }, encoding: 'b64' } });
    expect(r.statusCode).toBe(200);
    expect(String(r.headers['content-type'])).toMatch(/^application\/json/);
    expect(Number(r.headers['content-length'])).toBe(r.rawPayload.length);
    const y = fromB64(r.json().outputs.y.b64);
    expect(y.length).toBe(n);
    expect(y[7]).toBe(-Math.fround(1));
    expect(y[n - 1]).toBe(-Math.fround((n - 1) / 7));
  });
});
