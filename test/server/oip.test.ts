/** The Open Inference Protocol (KServe v2) surface over a model repository folder. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { closeTo, makeApp, matmul, transpose } from './helpers.js';

let dir: string;
let app: GradserveApp;

const W = [1, 2, 3, 4, 5, 6];
// A linear model with its weight as a constant; `loss` = sum(y) gives gradients through the same endpoint.
const linear = {
  inputs: { x: { shape: [null, 2], datatype: 'FP32' } },
  constants: { w: { shape: [2, 3], datatype: 'FP32', data: W } },
  nodes: [
    { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'loss', op: 'sum', inputs: ['y'] },
  ],
  outputs: ['y', 'loss'],
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gradserve-models-'));
  writeFileSync(path.join(dir, 'linear.json'), JSON.stringify(linear));
  writeFileSync(path.join(dir, 'wrapped.json'), JSON.stringify({ graph: linear }));
  app = await makeApp({ modelRepository: dir });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('health and server metadata', () => {
  it('answers live and ready with 200', async () => {
    const live = await app.inject({ method: 'GET', url: '/v2/health/live' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ live: true });
    const ready = await app.inject({ method: 'GET', url: '/v2/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ ready: true });
  });

  it('lists binary_tensor_data among the extensions', async () => {
    const r = await app.inject({ method: 'GET', url: '/v2' });
    expect(r.statusCode).toBe(200);
    const m = r.json();
    expect(m.name).toBe('gradserve');
    expect(typeof m.version).toBe('string');
    expect(m.extensions).toContain('binary_tensor_data');
  });
});

describe('models', () => {
  it('describes a model: inputs with -1 for free dimensions, inferred outputs', async () => {
    const r = await app.inject({ method: 'GET', url: '/v2/models/linear' });
    expect(r.statusCode).toBe(200);
    const m = r.json();
    expect(m.name).toBe('linear');
    expect(m.versions).toEqual(['1']);
    expect(m.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 2] }]);
    expect(m.outputs).toEqual([
      { name: 'y', datatype: 'FP32', shape: [-1, 3] },
      { name: 'loss', datatype: 'FP32', shape: [] },
    ]);
    expect((await app.inject({ method: 'GET', url: '/v2/models/linear/ready' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/models/wrapped/versions/1' })).json().name).toBe('wrapped');
  });

  it('unknown models are 404 with an OIP error body', async () => {
    const r = await app.inject({ method: 'GET', url: '/v2/models/nope' });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ error: expect.stringContaining('nope') });
    const inf = await app.inject({ method: 'POST', url: '/v2/models/../infer', payload: { inputs: [] } });
    expect(inf.statusCode).toBe(404);
  });

  it('infers with JSON tensors', async () => {
    const x = [1, 2, 3, 4];
    const r = await app.inject({
      method: 'POST', url: '/v2/models/linear/infer',
      payload: { id: 'req-1', inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: x }] },
    });
    expect(r.statusCode).toBe(200);
    const b = r.json();
    expect(b.model_name).toBe('linear');
    expect(b.id).toBe('req-1');
    const y = b.outputs.find((o: { name: string }) => o.name === 'y');
    expect(y.shape).toEqual([2, 3]);
    expect(y.datatype).toBe('FP32');
    closeTo(y.data, matmul(x, W, 2, 2, 3));
    const loss = b.outputs.find((o: { name: string }) => o.name === 'loss');
    closeTo(loss.data, [matmul(x, W, 2, 2, 3).reduce((s, v) => s + v, 0)]);
  });

  it('returns gradients for outputs named grad:<wrt> with parameters.of', async () => {
    const x = [1, 2, 3, 4];
    const r = await app.inject({
      method: 'POST', url: '/v2/models/linear/infer',
      payload: {
        inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: x }],
        outputs: [{ name: 'y' }, { name: 'grad:x', parameters: { of: 'loss' } }, { name: 'grad:w', parameters: { of: 'loss' } }],
      },
    });
    expect(r.statusCode).toBe(200);
    const out = Object.fromEntries(r.json().outputs.map((o: { name: string }) => [o.name, o]));
    expect(Object.keys(out)).toEqual(['y', 'grad:x', 'grad:w']);
    // d sum(x·w)/dx = 1·wᵀ, d/dw = xᵀ·1
    closeTo(out['grad:x'].data, matmul([1, 1, 1, 1, 1, 1], transpose(W, 2, 3), 2, 3, 2));
    expect(out['grad:w'].shape).toEqual([2, 3]);
    closeTo(out['grad:w'].data, matmul(transpose(x, 2, 2), [1, 1, 1, 1, 1, 1], 2, 2, 3));
  });

  it('takes parameters.of from the request too (all a stock Triton client can set), the output\'s own first', async () => {
    const x = [1, 2, 3, 4];
    const infer = (payload: object) => app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload });
    const inputs = [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: x }];
    const r = await infer({ inputs, outputs: [{ name: 'grad:x' }], parameters: { of: 'loss' } });
    expect(r.statusCode, r.body).toBe(200);
    closeTo(r.json().outputs[0].data, matmul([1, 1, 1, 1, 1, 1], transpose(W, 2, 3), 2, 3, 2));
    // The output's own `of` wins over the request's (which names no value here).
    const own = await infer({ inputs, outputs: [{ name: 'grad:x', parameters: { of: 'loss' } }], parameters: { of: 'nothing' } });
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json().outputs[0].data).toEqual(r.json().outputs[0].data);
    expect((await infer({ inputs, outputs: [{ name: 'grad:x' }], parameters: { of: 'nothing' } })).json().error).toMatch(/"nothing" names no input/);
    const missing = await infer({ inputs, outputs: [{ name: 'grad:x' }] });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toMatch(/needs parameters\.of \(on the output or the request\)/);
  });

  it('Accept: application/octet-stream frames every output with 64-byte aligned blobs and their offsets', async () => {
    const x = [1, 2, 3, 4];
    const r = await app.inject({
      method: 'POST', url: '/v2/models/linear/infer', headers: { accept: 'application/octet-stream' },
      payload: { inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: x }], outputs: [{ name: 'loss' }, { name: 'y' }] },
    });
    expect(r.statusCode, r.body).toBe(200);
    const n = Number(r.headers['inference-header-content-length']);
    expect(n % 64).toBe(0);
    const head = JSON.parse(r.rawPayload.subarray(0, n).toString('utf8'));
    const [loss, y] = head.outputs as { parameters: { binary_data_size: number; binary_data_offset: number } }[];
    expect(loss!.parameters).toEqual({ binary_data_size: 4, binary_data_offset: 0 });
    expect(y!.parameters).toEqual({ binary_data_size: 24, binary_data_offset: 64 });
    const at = r.rawPayload.byteOffset + n;
    closeTo(Array.from(new Float32Array(r.rawPayload.buffer.slice(at + 64, at + 88))), matmul(x, W, 2, 2, 3));
    // binary_data_output: false keeps the answer in JSON whatever Accept says.
    const json = await app.inject({
      method: 'POST', url: '/v2/models/linear/infer', headers: { accept: 'application/octet-stream' },
      payload: { inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: x }], parameters: { binary_data_output: false } },
    });
    expect(json.headers['inference-header-content-length']).toBeUndefined();
    expect(json.json().outputs).toHaveLength(2);
  });

  it('speaks the binary tensor data extension both ways', async () => {
    const x = new Float32Array([1, 2, 3, 4]);
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }],
      outputs: [{ name: 'y', parameters: { binary_data: true } }, { name: 'loss' }],
    }));
    const r = await app.inject({
      method: 'POST', url: '/v2/models/linear/infer',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      payload: Buffer.concat([header, Buffer.from(x.buffer)]),
    });
    expect(r.statusCode).toBe(200);
    const n = Number(r.headers['inference-header-content-length']);
    const raw = r.rawPayload;
    const head = JSON.parse(raw.subarray(0, n).toString('utf8'));
    const y = head.outputs.find((o: { name: string }) => o.name === 'y');
    expect(y.parameters.binary_data_size).toBe(24);
    expect(y.data).toBeUndefined();
    const bytes = new Uint8Array(raw.subarray(n, n + 24));
    closeTo(Array.from(new Float32Array(bytes.slice().buffer)), matmul(Array.from(x), W, 2, 2, 3));
    const loss = head.outputs.find((o: { name: string }) => o.name === 'loss');
    closeTo(loss.data, [matmul(Array.from(x), W, 2, 2, 3).reduce((s, v) => s + v, 0)]);
  });

  it.each([-4, 16.5, '16'])('refuses binary_data_size %j (a byte count is a non-negative integer)', async (size) => {
    // 20 bytes: a size of -4 or 16.5 would otherwise slice out exactly the 16 bytes a [2, 2] FP32 tensor needs
    const x = new Float32Array([1, 2, 3, 4, 5]);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', parameters: { binary_data_size: size } }] }));
    const r = await app.inject({
      method: 'POST', url: '/v2/models/linear/infer',
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      payload: Buffer.concat([header, Buffer.from(x.buffer)]),
    });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ error: expect.stringContaining(`binary_data_size ${String(size)}`) });
  });

  it('binary: outputs back to back (no padding, as Triton clients add up sizes), unclaimed input bytes refused', async () => {
    const x = new Float32Array([1, 2, 3, 4, 5, 6]);
    const send = (inputs: unknown[], bytes: Buffer, outputs?: unknown[]) => {
      const header = Buffer.from(JSON.stringify({ inputs, outputs, parameters: { binary_data_output: true } }));
      return app.inject({
        method: 'POST', url: '/v2/models/linear/infer',
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
        payload: Buffer.concat([header, bytes]),
      });
    };
    const r = await send([{ name: 'x', shape: [3, 2], datatype: 'FP32', parameters: { binary_data_size: 24 } }], Buffer.from(x.buffer));
    expect(r.statusCode).toBe(200);
    const n = Number(r.headers['inference-header-content-length']);
    const head = JSON.parse(r.rawPayload.subarray(0, n).toString('utf8'));
    expect(head.outputs.map((o: { name: string; parameters: { binary_data_size: number; binary_data_offset: number } }) => [o.name, o.parameters.binary_data_size, o.parameters.binary_data_offset])).toEqual([['y', 36, 0], ['loss', 4, 36]]);
    expect(r.rawPayload.length).toBe(n + 40);
    const y = new Float32Array(r.rawPayload.buffer.slice(r.rawPayload.byteOffset + n, r.rawPayload.byteOffset + n + 36));
    closeTo(Array.from(y), matmul(Array.from(x), W, 3, 2, 3));
    expect(new Float32Array(r.rawPayload.buffer.slice(r.rawPayload.byteOffset + n + 36, r.rawPayload.byteOffset + n + 40))[0]).toBeCloseTo(y.reduce((s, v) => s + v, 0), 3);
    const extra = await send([{ name: 'x', shape: [3, 2], datatype: 'FP32', parameters: { binary_data_size: 24 } }], Buffer.concat([Buffer.from(x.buffer), Buffer.alloc(4)]));
    expect(extra.statusCode).toBe(400);
    expect(extra.json()).toEqual({ error: expect.stringMatching(/bytes 24 to 28 of the binary section belong to no tensor/) });
    const none = await send([{ name: 'x', shape: [3, 2], datatype: 'FP32', data: Array.from(x) }], Buffer.alloc(4));
    expect(none.statusCode).toBe(400);
  });

  it('reports errors as {"error": ...} with the catalogue status', async () => {
    const bad = await app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload: { inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3] }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ error: expect.stringContaining('[2, 2]') });
    const shape = await app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload: { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }] } });
    // A request the model cannot run is 400 on the OIP surface, as in KServe and Triton (422 on v1).
    expect(shape.statusCode).toBe(400);
    expect(typeof shape.json().error).toBe('string');
    const schema = await app.inject({ method: 'POST', url: '/v2/models/linear/infer', payload: { inputs: 'x' } });
    expect(schema.statusCode).toBe(400);
    expect(typeof schema.json().error).toBe('string');
  });
});

describe('model repository', () => {
  it('hands the engine deeply frozen graphs and picks up edited files', async () => {
    const { ModelRepository } = await import('../../src/server/models.js');
    const repo = new ModelRepository(dir);
    const g = (await repo.get('linear')).graph;
    expect(Object.isFrozen(g)).toBe(true);
    expect(Object.isFrozen(g.nodes[0])).toBe(true);
    expect(Object.isFrozen(g.constants!.w)).toBe(true);
    expect((await repo.get('linear')).graph).toBe(g);
    const edited = { ...linear, outputs: ['loss'] };
    writeFileSync(path.join(dir, 'edited.json'), JSON.stringify(linear));
    const before = (await repo.get('edited')).graph;
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(path.join(dir, 'edited.json'), JSON.stringify(edited));
    const { utimesSync } = await import('node:fs');
    utimesSync(path.join(dir, 'edited.json'), new Date(), new Date(Date.now() + 5000));
    const after = (await repo.get('edited')).graph;
    expect(before.outputs).toEqual(['y', 'loss']);
    expect(after.outputs).toEqual(['loss']);
  });
});
