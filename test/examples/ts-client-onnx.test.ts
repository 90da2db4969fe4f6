/** The TypeScript client's importOnnx and models by reference (`model` instead of `graph`), against a live server. */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GradserveClient } from '../../src/client/index.js';
import { startServer, type LiveServer } from './live-server.js';

const ONNX = join(import.meta.dirname, '../fixtures/onnx/mlp_layernorm.onnx');
let server: LiveServer;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gradserve-tsclient-onnx-'));
  copyFileSync(ONNX, join(dir, 'mlp.onnx'));
  server = await startServer({ modelRepository: dir });
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GradserveClient and ONNX models', () => {
  it('importOnnx returns the graph, the parameters and their values (b64 or binary)', async () => {
    const c = new GradserveClient(server.url);
    for (const weights of ['b64', 'binary'] as const) {
      const r = await c.importOnnx(readFileSync(ONNX), { weights });
      expect(r.graph.outputs).toEqual(['y']);
      expect(r.parameters['fc1.weight']).toEqual({ shape: [32, 16], datatype: 'FP32' });
      expect(r.values['fc1.weight']!.data).toBeInstanceOf(Float32Array);
      expect(r.values['fc1.weight']!.data.length).toBe(512);
    }
    const bare = await c.importOnnx(readFileSync(ONNX), { weights: 'none' });
    expect(bare.values).toEqual({});
    await expect(c.importOnnx(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ code: 'INVALID_MODEL', status: 400 });
  });

  it('uses a repository model by name: stored weights by default, gradients with respect to them', async () => {
    const c = new GradserveClient(server.url);
    const x = { shape: [4, 16], datatype: 'FP32' as const, data: new Float32Array(64).fill(0.5) };
    const r = await c.vjp({ model: 'mlp', inputs: { x }, cotangents: { y: { shape: [4, 4], datatype: 'FP32', data: new Float32Array(16).fill(1) } }, wrt: ['fc2.bias', 'x'] });
    expect(Array.from(r.gradients['fc2.bias']!.data as Float32Array)).toEqual([4, 4, 4, 4]);
    expect(r.gradients.x!.shape).toEqual([4, 16]);
    const s = await c.shapes({ model: 'mlp', inputs: { x: { shape: [4, 16], datatype: 'FP32' } } });
    expect(s.values.y).toEqual({ shape: [4, 4], datatype: 'FP32' });
  });
});
