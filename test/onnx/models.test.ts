/**
 * Models exported by PyTorch (scripts/fixtures_onnx.py, torch.onnx.export) imported and differentiated: outputs and
 * the vector-Jacobian product with respect to the input and the weights against torch.autograd's, through the
 * library and through a model repository (`"model"` by reference).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate, vjp } from '../../src/index.js';
import { importOnnx } from '../../src/onnx/import.js';
import type { GradserveApp } from '../../src/server/app.js';
import { tensor } from '../../src/tensor/tensor.js';
import { makeApp } from '../server/helpers.js';

const FIX = new URL('../fixtures/onnx/', import.meta.url);

interface Fixture {
  model: string;
  x: { shape: number[]; data: number[] };
  y: { shape: number[]; data: number[] };
  cotangent: { shape: number[]; data: number[] };
  grad_x: number[];
  grad_params: Record<string, { shape: number[]; data: number[] }>;
}

const load = (name: string) => JSON.parse(readFileSync(new URL(`${name}.json`, FIX), 'utf8')) as Fixture;
const bytes = (name: string) => readFileSync(new URL(`${name}.onnx`, FIX));

function expectClose(got: ArrayLike<number>, want: number[], tol = 2e-4): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(1, ...want.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(Number(got[i]) - want[i]!) / scale);
  expect(worst).toBeLessThan(tol);
}

describe.each(['mlp_layernorm', 'mlp_layernorm_opset13', 'transformer_encoder'])('%s exported by PyTorch', (name) => {
  const fx = load(name);
  const { graph, parameters } = importOnnx(bytes(name));
  const x = tensor('FP32', fx.x.shape, fx.x.data);

  it('computes PyTorch\'s output', async () => {
    const { outputs } = await evaluate(graph, { ...parameters, x });
    expect(outputs.y!.shape).toEqual(fx.y.shape);
    expectClose(outputs.y!.data as Float32Array, fx.y.data);
  });

  it('differentiates like torch.autograd: the input and every weight the exporter kept by name', async () => {
    const named = Object.keys(fx.grad_params).filter((k) => Object.hasOwn(parameters, k));
    expect(named.length).toBeGreaterThan(0);
    const res = await vjp(graph, { ...parameters, x }, { y: tensor('FP32', fx.cotangent.shape, fx.cotangent.data) }, ['x', ...named]);
    expectClose(res.gradients.x!.data as Float32Array, fx.grad_x);
    for (const k of named) {
      expect(res.gradients[k]!.shape, k).toEqual(fx.grad_params[k]!.shape);
      expectClose(res.gradients[k]!.data as Float32Array, fx.grad_params[k]!.data);
    }
  });
});

describe('pattern fusion', () => {
  it('imports the exporter\'s erf GELU as one gelu node', () => {
    const { graph } = importOnnx(bytes('transformer_encoder'));
    const ops = graph.nodes.map((n) => n.op);
    expect(ops).toContain('gelu');
    expect(ops).not.toContain('erf');
  });

  it('imports the layer norm decomposition written before opset 17 as layer_norm', () => {
    for (const name of ['mlp_layernorm_opset13', 'transformer_encoder']) {
      const ops = importOnnx(bytes(name)).graph.nodes.map((n) => n.op);
      expect(ops, name).toContain('layer_norm');
      expect(ops, name).not.toContain('sqrt');
    }
  });
});

describe('cnn exported by PyTorch', () => {
  it('computes PyTorch\'s output and gradients (conv, max pool, flatten, Gemm)', async () => {
    const fx = load('cnn');
    const { graph, parameters } = importOnnx(bytes('cnn'));
    const x = tensor('FP32', fx.x.shape, fx.x.data);
    const { outputs } = await evaluate(graph, { ...parameters, x });
    expectClose(outputs.y!.data as Float32Array, fx.y.data);
    const named = Object.keys(fx.grad_params).filter((k) => Object.hasOwn(parameters, k));
    const res = await vjp(graph, { ...parameters, x }, { y: tensor('FP32', fx.cotangent.shape, fx.cotangent.data) }, ['x', ...named]);
    expectClose(res.gradients.x!.data as Float32Array, fx.grad_x);
    for (const k of named) expectClose(res.gradients[k]!.data as Float32Array, fx.grad_params[k]!.data);
  });
});

describe('an imported model in the repository, used by reference', () => {
  let dir: string;
  let app: GradserveApp;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gradserve-onnx-'));
    cpSync(new URL('mlp_layernorm.onnx', FIX), path.join(dir, 'mlp.onnx'));
    app = await makeApp({ modelRepository: dir });
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the gradient with respect to a weight, the weights stored once', async () => {
    const fx = load('mlp_layernorm');
    const r = await app.inject({
      method: 'POST', url: '/v1/vjp',
      payload: { model: 'mlp', inputs: { x: { shape: fx.x.shape, data: fx.x.data } }, cotangents: { y: { shape: fx.cotangent.shape, data: fx.cotangent.data } }, wrt: ['fc1.weight', 'x'] },
    });
    expect(r.statusCode).toBe(200);
    expectClose(r.json().gradients['fc1.weight'].data, fx.grad_params['fc1.weight']!.data);
    expectClose(r.json().gradients.x.data, fx.grad_x);
    const meta = (await app.inject({ method: 'GET', url: '/v2/models/mlp' })).json();
    expect(meta.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [4, 16] }]);
    expect(meta.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['fc1.weight', 'fc1.bias', 'fc2.weight']));
  });

});
