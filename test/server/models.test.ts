/**
 * Models by reference (API.md "Models by reference and imported models"): `<name>.json` graphs with their weights in
 * `<name>.safetensors`, loaded at start, broken models isolated, `"model"` on every /v1 endpoint, parameters in the
 * OIP metadata and `grad:<parameter>` through infer.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { ModelRepository } from '../../src/server/models.js';
import { readSafetensors, writeSafetensors } from '../../src/tensor/safetensors.js';
import { tensor } from '../../src/tensor/tensor.js';
import { closeTo, makeApp } from './helpers.js';

const W = [1, 2, 3, 4, 5, 6];
const B = [0.5, -0.5, 1];
const linear = {
  inputs: { x: { shape: [null, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' }, b: { shape: [3], datatype: 'FP32' } },
  nodes: [
    { name: 'xw', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'y', op: 'add', inputs: ['xw', 'b'] },
    { name: 'loss', op: 'sum', inputs: ['y'] },
  ],
  outputs: ['y', 'loss'],
};
const weights = () => ({ w: tensor('FP32', [2, 3], W), b: tensor('FP32', [3], B) });

let dir: string;
let app: GradserveApp;
const logged: { level: string; msg: string }[] = [];
const log = {
  level: 'info',
  stream: { write: (line: string) => { const j = JSON.parse(line); logged.push({ level: j.level >= 50 ? 'error' : 'info', msg: j.msg }); } },
};

function write(name: string, graph: unknown, tensors?: Record<string, ReturnType<typeof tensor>>): void {
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(graph));
  if (tensors !== undefined) writeFileSync(path.join(dir, `${name}.safetensors`), writeSafetensors(tensors));
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gradserve-byref-'));
  write('linear', linear, weights());
  write('listed', { graph: linear, parameters: ['w', 'b'] }, weights());
  write('extra', linear, { ...weights(), c: tensor('FP32', [1], [1]) });
  write('mismatch', linear, { w: tensor('FP32', [3, 2], W), b: tensor('FP32', [3], B) });
  write('wrongtype', linear, { w: tensor('FP64', [2, 3], W), b: tensor('FP32', [3], B) });
  write('missing', { graph: linear, parameters: ['w', 'b'] }, { w: tensor('FP32', [2, 3], W) });
  writeFileSync(path.join(dir, 'garbage.json'), '{"nodes": ');
  write('badweights', linear);
  writeFileSync(path.join(dir, 'badweights.safetensors'), Buffer.from([1, 2, 3]));
  app = await makeApp({ modelRepository: dir, logger: log });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object });

describe('safetensors', () => {
  it('round-trips every datatype, aligned views of one buffer', () => {
    const ts = {
      f: tensor('FP32', [2], [1.5, -2]),
      d: tensor('FP64', [1, 2], [Math.PI, -0]),
      i: tensor('INT32', [3], [1, -2, 3]),
      l: tensor('INT64', [2], [2n ** 40n, -5n]),
      t: tensor('BOOL', [3], [1, 0, 1]),
    };
    const bytes = writeSafetensors(ts, { format: 'pt' });
    const { tensors, metadata } = readSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt' });
    for (const [k, t] of Object.entries(ts)) {
      const got = tensors.get(k)!;
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect(Array.from(got.data as ArrayLike<number>)).toEqual(Array.from(t.data as ArrayLike<number>));
      expect(got.data.buffer).toBe(bytes.buffer);
    }
  });

  it.each([
    [Buffer.from([1, 2]), /fewer than the 8/],
    [Buffer.concat([Buffer.from([200, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]), /beyond/],
    [Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{x')]), /not JSON/],
    [Buffer.concat([Buffer.from([37, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}'.slice(0, 37))]), /not JSON|F16/],
  ])('refuses a malformed file (%#)', (buf, msg) => {
    expect(() => readSafetensors(buf)).toThrow(msg);
  });

  it('refuses an unknown dtype, a wrong byte count and overlapping tensors', () => {
    const file = (header: object, data: number) => {
      const h = Buffer.from(JSON.stringify(header));
      const n = Buffer.alloc(8);
      n.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([n, h, Buffer.alloc(data)]);
    };
    expect(() => readSafetensors(file({ a: { dtype: 'F16', shape: [1], data_offsets: [0, 2] } }, 2))).toThrow(/F16/);
    expect(() => readSafetensors(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4))).toThrow(/needs 8/);
    expect(() => readSafetensors(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] } }, 8))).toThrow(/overlap/);
    expect(() => readSafetensors(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, 4))).toThrow(/within/);
  });
});

describe('the repository', () => {
  it('loads every model at start and logs the broken ones by name', () => {
    const errors = logged.filter((l) => l.level === 'error').map((l) => l.msg);
    for (const name of ['extra', 'mismatch', 'wrongtype', 'missing', 'garbage', 'badweights']) {
      expect(errors.some((m) => m.startsWith(`model "${name}" failed to load`)), name).toBe(true);
    }
    expect(errors.some((m) => m.includes('"linear"'))).toBe(false);
  });

  it('holds the weights once: every request sees the same stored tensors', async () => {
    const repo = new ModelRepository(dir);
    const a = await repo.get('linear');
    const b = await repo.get('linear');
    expect(a).toBe(b);
    expect(a.parameters.w!.data).toBe(b.parameters.w!.data);
    expect(a.parameterInfo).toHaveLength(2);
    expect(a.parameterInfo).toEqual(expect.arrayContaining([{ name: 'b', datatype: 'FP32', shape: [3] }, { name: 'w', datatype: 'FP32', shape: [2, 3] }]));
    expect(Object.isFrozen(a.graph)).toBe(true);
  });

  it('logs a model broken by an edit soon after the edit, before anyone uses it', async () => {
    write('later', linear, weights());
    await new Promise((r) => setTimeout(r, 600));
    logged.length = 0;
    writeFileSync(path.join(dir, 'later.safetensors'), writeSafetensors({ w: tensor('FP32', [2, 3], W) }).subarray(0, 20));
    for (let i = 0; i < 40 && !logged.some((l) => l.msg.startsWith('model "later" failed to load')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(logged.some((l) => l.level === 'error' && l.msg.startsWith('model "later" failed to load'))).toBe(true);
  });

  it('reloads a model when its weights change', async () => {
    const repo = new ModelRepository(dir);
    write('edited', linear, weights());
    const before = await repo.get('edited');
    writeFileSync(path.join(dir, 'edited.safetensors'), writeSafetensors({ w: tensor('FP32', [2, 3], W.map((v) => -v)), b: tensor('FP32', [3], B) }));
    utimesSync(path.join(dir, 'edited.safetensors'), new Date(), new Date(Date.now() + 5000));
    const after = await repo.get('edited');
    expect(after).not.toBe(before);
    expect(Array.from(after.parameters.w!.data as Float32Array)).toEqual(W.map((v) => -v));
  });
});

describe('broken models', () => {
  it.each([
    ['extra', /tensor "c".*names no graph input/],
    ['mismatch', /tensor "w" has shape \[3, 2\], the graph declares \[2, 3\]/],
    ['wrongtype', /tensor "w" is FP64, the graph declares FP32/],
    ['missing', /parameter "b" has no tensor/],
    ['garbage', /garbage.json is not valid JSON/],
    ['badweights', /badweights.safetensors/],
  ])('%s: 503 MODEL_UNAVAILABLE with the load error, on every use', async (name, msg) => {
    const ready = await app.inject({ method: 'GET', url: `/v2/models/${name}/ready` });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().error).toMatch(msg);
    const meta = await app.inject({ method: 'GET', url: `/v2/models/${name}` });
    expect(meta.statusCode).toBe(503);
    const infer = await post(`/v2/models/${name}/infer`, { inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] });
    expect(infer.statusCode).toBe(503);
    const v1 = await post('/v1/evaluate', { model: name, inputs: { x: [[1, 2]] } });
    expect(v1.statusCode).toBe(503);
    expect(v1.json()).toMatchObject({ code: 'MODEL_UNAVAILABLE', detail: expect.stringMatching(msg) });
  });

  it('leaves the server and the other models serving', async () => {
    expect((await app.inject({ method: 'GET', url: '/v2/health/ready' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/models/linear/ready' })).statusCode).toBe(200);
  });
});

describe('"model" on /v1', () => {
  const x = [[1, 2]];
  const y = [1 * 1 + 2 * 4 + 0.5, 1 * 2 + 2 * 5 - 0.5, 1 * 3 + 2 * 6 + 1];

  it('uses the stored parameters when the request leaves them out', async () => {
    const r = await post('/v1/evaluate', { model: 'linear', inputs: { x } });
    expect(r.statusCode).toBe(200);
    closeTo(r.json().outputs.y.data, y);
    const listed = await post('/v1/evaluate', { model: 'listed', inputs: { x } });
    closeTo(listed.json().outputs.y.data, y);
  });

  it('lets a request override a parameter for that request only', async () => {
    const r = await post('/v1/evaluate', { model: 'linear', inputs: { x, b: [0, 0, 0] } });
    closeTo(r.json().outputs.y.data, [9, 12, 15]);
    const again = await post('/v1/evaluate', { model: 'linear', inputs: { x } });
    closeTo(again.json().outputs.y.data, y);
  });

  it('differentiates with respect to parameters: grad, vjp, jvp, hvp, jacobian, hessian, gradcheck', async () => {
    const g = await post('/v1/grad', { model: 'linear', inputs: { x }, of: 'loss', wrt: ['w', 'b', 'x'] });
    expect(g.statusCode).toBe(200);
    closeTo(g.json().gradients.w.data, [1, 1, 1, 2, 2, 2]);
    closeTo(g.json().gradients.b.data, [1, 1, 1]);
    closeTo(g.json().gradients.x.data, [6, 15]);
    const vjp = await post('/v1/vjp', { model: 'linear', inputs: { x }, cotangents: { y: [[1, 0, -1]] }, wrt: ['b'] });
    closeTo(vjp.json().gradients.b.data, [1, 0, -1]);
    const jvp = await post('/v1/jvp', { model: 'linear', inputs: { x }, tangents: { b: [1, 2, 3] }, of: ['y'] });
    closeTo(jvp.json().tangents.y.data, [1, 2, 3]);
    const hvp = await post('/v1/hvp', { model: 'linear', inputs: { x }, of: 'loss', vectors: { w: [[1, 1, 1], [1, 1, 1]] } });
    expect(hvp.statusCode).toBe(200);
    closeTo(hvp.json().hvp.w.data, [0, 0, 0, 0, 0, 0]);
    const jac = await post('/v1/jacobian', { model: 'linear', inputs: { x }, of: ['y'], wrt: ['b'] });
    expect(jac.json().jacobians.y.b.shape).toEqual([1, 3, 3]);
    const hes = await post('/v1/hessian', { model: 'linear', inputs: { x }, of: 'loss', wrt: ['b'] });
    expect(hes.statusCode).toBe(200);
    const gc = await post('/v1/gradcheck', { model: 'linear', inputs: { x }, of: 'loss', wrt: ['w'] });
    expect(gc.json().ok).toBe(true);
  });

  it('transforms and infers shapes of a model', async () => {
    const t = await post('/v1/transform', { model: 'linear', transform: 'grad', of: 'loss', wrt: ['w'] });
    expect(t.statusCode).toBe(200);
    expect(t.json().graph.outputs).toEqual(['grad:w']);
    const s = await post('/v1/shapes', { model: 'linear', inputs: { x: { shape: [4, 2], datatype: 'FP32' } } });
    expect(s.statusCode).toBe(200);
    expect(s.json().values.y).toEqual({ shape: [4, 3], datatype: 'FP32' });
  });

  it('refuses both graph and model, and neither, with 400 INVALID_REQUEST', async () => {
    const both = await post('/v1/evaluate', { model: 'linear', graph: linear, inputs: { x } });
    expect(both.statusCode).toBe(400);
    expect(both.json()).toMatchObject({ code: 'INVALID_REQUEST', errors: [{ path: 'graph', message: expect.stringContaining('not both') }] });
    const neither = await post('/v1/grad', { inputs: { x }, of: 'loss', wrt: ['w'] });
    expect(neither.statusCode).toBe(400);
    expect(neither.json()).toMatchObject({ code: 'INVALID_REQUEST' });
    const t = await post('/v1/transform', { model: 'linear', graph: linear, transform: 'grad', of: 'loss', wrt: ['w'] });
    expect(t.statusCode).toBe(400);
  });

  it('answers 404 NOT_FOUND for an unknown model, and a bad override as the engine would', async () => {
    const r = await post('/v1/evaluate', { model: 'nope', inputs: { x } });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: 'NOT_FOUND' });
    const bad = await post('/v1/evaluate', { model: 'linear', inputs: { x, w: [[1, 2], [3, 4]] } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json()).toMatchObject({ code: 'SHAPE_MISMATCH' });
  });
});

describe('the OIP surface of a model with parameters', () => {
  it('lists parameters apart from the inputs', async () => {
    const r = await app.inject({ method: 'GET', url: '/v2/models/linear' });
    expect(r.statusCode).toBe(200);
    const m = r.json();
    expect(m.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 2] }]);
    expect(m.parameters).toEqual(expect.arrayContaining([{ name: 'w', datatype: 'FP32', shape: [2, 3] }, { name: 'b', datatype: 'FP32', shape: [3] }]));
    expect(m.parameters).toHaveLength(2);
    expect(m.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, 3] }, { name: 'loss', datatype: 'FP32', shape: [] }]);
  });

  it('infers without the parameters and returns grad:<parameter>', async () => {
    const r = await post('/v2/models/linear/infer', {
      inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }],
      outputs: [{ name: 'y' }, { name: 'grad:w', parameters: { of: 'loss' } }, { name: 'grad:b', parameters: { of: 'loss' } }],
    });
    expect(r.statusCode).toBe(200);
    const out = Object.fromEntries(r.json().outputs.map((o: { name: string }) => [o.name, o]));
    closeTo(out['grad:w'].data, [4, 4, 4, 6, 6, 6]);
    closeTo(out['grad:b'].data, [2, 2, 2]);
    expect(out.y.shape).toEqual([2, 3]);
  });
});
