/**
 * Binary framing on /v1 (API.md "Binary framing"), both directions, through app.inject against the real engine: every
 * tensor endpoint answers a framed request exactly as it answers the same request in JSON/b64, every datatype round
 * trips bit for bit, and the framing errors are INVALID_TENSOR (or INVALID_REQUEST for the header) with a path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensors } from '../../src/engine.types.js';
import type { GradserveApp } from '../../src/server/app.js';
import { asB64, bytesOf, frame, normalize, postFramed, t, unframe } from './framing-support.js';
import { engineWith, linearGraph, makeApp } from './helpers.js';

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

const f32 = (...v: number[]) => new Float32Array(v);
const f64 = (...v: number[]) => new Float64Array(v);

/** One of each datatype, with the values JSON cannot carry or gets wrong. */
const ALL = {
  f32: t('FP32', [2, 3], f32(1.5, -0, NaN, Infinity, -Infinity, 1e-45)),
  f64: t('FP64', [5], f64(Math.PI, NaN, -Infinity, 5e-324, -0)),
  i32: t('INT32', [4], new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31)])),
  i64: t('INT64', [3], new BigInt64Array([2n ** 62n + 1n, -(2n ** 63n), 7n])),
  b: t('BOOL', [2, 2], new Uint8Array([1, 0, 0, 1])),
  empty: t('FP32', [0, 3], new Float32Array(0)),
};
const identityGraph = {
  inputs: Object.fromEntries(Object.entries(ALL).map(([k, v]) => [k, { datatype: v.datatype }])),
  nodes: Object.keys(ALL).map((k) => ({ name: `out_${k}`, op: 'identity', inputs: [k] })),
  outputs: Object.keys(ALL).map((k) => `out_${k}`),
};

/** ½|x·w|² in FP64 with a binary constant: gradient (x·w)·wᵀ, Hessian w·wᵀ. */
const halfSquared = {
  inputs: { x: { shape: [null, 2], datatype: 'FP64' }, w: { shape: [2, 3], datatype: 'FP64' } },
  constants: { half: t('FP64', [], f64(0.5)) },
  nodes: [
    { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'y2', op: 'square', inputs: ['y'] },
    { name: 's', op: 'sum', inputs: ['y2'] },
    { name: 'loss', op: 'mul', inputs: ['s', 'half'] },
  ],
  outputs: ['y', 'loss'],
};
const x64 = t('FP64', [1, 2], f64(1, 2));
const w64 = t('FP64', [2, 3], f64(1, 2, 3, 4, 5, 6));

/** FP32 with BOOL, INT32 and INT64 inputs beside the differentiated one: loss = sum(gather(where(m, x, 0) · k, l)²). */
const mixed = {
  inputs: { x: { datatype: 'FP32' }, m: { datatype: 'BOOL' }, k: { datatype: 'INT32' }, l: { datatype: 'INT64' } },
  constants: { zero: t('FP32', [], f32(0)) },
  nodes: [
    { name: 'xm', op: 'where', inputs: ['m', 'x', 'zero'] },
    { name: 'kf', op: 'cast', inputs: ['k'], attrs: { to: 'FP32' } },
    { name: 'y', op: 'mul', inputs: ['xm', 'kf'] },
    { name: 'g', op: 'gather', inputs: ['y', 'l'], attrs: { axis: 0 } },
    { name: 'g2', op: 'square', inputs: ['g'] },
    { name: 'loss', op: 'sum', inputs: ['g2'] },
  ],
  outputs: ['g', 'loss'],
};
const mixedInputs = {
  x: t('FP32', [2, 3], f32(1, 2, 3, 4, 5, 6)),
  m: t('BOOL', [2, 3], new Uint8Array([1, 0, 1, 1, 1, 0])),
  k: t('INT32', [], new Int32Array([3])),
  l: t('INT64', [3], new BigInt64Array([1n, 0n, 1n])),
};
const dx32 = t('FP32', [2, 3], f32(1, -1, 0.5, 2, 0, 1));

/** Every kind of tensor endpoint, each with tensors in every request field that takes them. */
const KINDS: [string, string, Record<string, unknown>][] = [
  ['/v1/evaluate with every datatype', '/v1/evaluate', { graph: identityGraph, inputs: ALL }],
  ['/v1/grad in FP64 with a binary constant', '/v1/grad', { graph: halfSquared, inputs: { x: x64, w: w64 }, of: 'loss', wrt: ['x', 'w'] }],
  ['/v1/vjp in FP64 with a binary constant', '/v1/vjp', { graph: halfSquared, inputs: { x: x64, w: w64 }, cotangents: { y: t('FP64', [1, 3], f64(1, -1, 2)) }, wrt: ['x', 'w'] }],
  ['/v1/jvp in FP64 with a binary constant', '/v1/jvp', { graph: halfSquared, inputs: { x: x64, w: w64 }, tangents: { x: t('FP64', [1, 2], f64(0.5, -2)) }, of: ['y', 'loss'] }],
  ['/v1/jacobian in FP64 with a binary constant', '/v1/jacobian', { graph: halfSquared, inputs: { x: x64, w: w64 }, of: ['y'], wrt: ['x', 'w'] }],
  ['/v1/hvp in FP64 with a binary constant', '/v1/hvp', { graph: halfSquared, inputs: { x: x64, w: w64 }, of: 'loss', vectors: { x: t('FP64', [1, 2], f64(1, -1)) } }],
  ['/v1/hessian in FP64 with a binary constant', '/v1/hessian', { graph: halfSquared, inputs: { x: x64, w: w64 }, of: 'loss', wrt: ['x', 'w'] }],
  // The same endpoints with every datatype in the request.
  ['/v1/grad with BOOL, INT32 and INT64 inputs', '/v1/grad', { graph: mixed, inputs: mixedInputs, of: 'loss', wrt: ['x'] }],
  ['/v1/vjp with BOOL, INT32 and INT64 inputs', '/v1/vjp', { graph: mixed, inputs: mixedInputs, cotangents: { g: t('FP32', [3, 3], f32(1, 2, 3, 4, 5, 6, 7, 8, 9)) }, wrt: ['x'] }],
  ['/v1/jvp with BOOL, INT32 and INT64 inputs', '/v1/jvp', { graph: mixed, inputs: mixedInputs, tangents: { x: dx32 } }],
  ['/v1/jacobian with BOOL, INT32 and INT64 inputs', '/v1/jacobian', { graph: mixed, inputs: mixedInputs, of: ['g'], wrt: ['x'], mode: 'forward' }],
  ['/v1/hvp with BOOL, INT32 and INT64 inputs', '/v1/hvp', { graph: mixed, inputs: mixedInputs, of: 'loss', vectors: { x: dx32 } }],
  ['/v1/hessian with BOOL, INT32 and INT64 inputs', '/v1/hessian', { graph: mixed, inputs: mixedInputs, of: 'loss', wrt: ['x'] }],
];

async function viaB64(url: string, body: Record<string, unknown>) {
  const r = await app.inject({ method: 'POST', url, payload: asB64({ ...body, encoding: 'b64' }) as object });
  expect(r.statusCode, r.body).toBe(200);
  return normalize(r.json());
}

describe('every tensor endpoint: a framed request answers as the same request in b64', () => {
  it.each(KINDS)('%s, framed request and framed answer', async (_title, url, body) => {
    const want = await viaB64(url, body);
    for (const reverse of [false, true]) {
      const { payload, headerLength } = frame({ ...body, encoding: 'binary' }, { reverse });
      const got = unframe(await postFramed(app, url, payload, headerLength));
      expect(normalize(got.json, got.section)).toEqual(want);
    }
  });

  it.each(KINDS)('%s, framed request with a JSON answer, and a b64 request with a framed answer', async (_title, url, body) => {
    const want = await viaB64(url, body);
    const { payload, headerLength } = frame({ ...body, encoding: 'b64' });
    const r = await postFramed(app, url, payload, headerLength);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['inference-header-content-length']).toBeUndefined();
    expect(normalize(r.json())).toEqual(want);
    const framedAnswer = await app.inject({ method: 'POST', url, payload: asB64({ ...body, encoding: 'binary' }) as object });
    const got = unframe(framedAnswer);
    expect(normalize(got.json, got.section)).toEqual(want);
  });

  it('a b64 body over 1 MiB (its tensors decoded natively on the event loop) answers b64 as the framed request answers', async () => {
    const r = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));
    const graph = { inputs: { x: { datatype: 'FP32' }, w: { datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }], outputs: ['y'] };
    const body = { graph, inputs: { x: t('FP32', [64, 784], r(64 * 784, 1)), w: t('FP32', [784, 256], r(784 * 256, 2)) }, cotangents: { y: t('FP32', [64, 256], r(64 * 256, 3)) }, wrt: ['x', 'w'] };
    const b64Body = JSON.stringify(asB64({ ...body, encoding: 'b64' }));
    expect(b64Body.length).toBeGreaterThan(1 << 20);
    const viaJson = await app.inject({ method: 'POST', url: '/v1/vjp', headers: { 'content-type': 'application/json' }, payload: b64Body });
    expect(viaJson.statusCode, viaJson.body).toBe(200);
    const { payload, headerLength } = frame({ ...body, encoding: 'binary' });
    const framed = unframe(await postFramed(app, '/v1/vjp', payload, headerLength));
    expect(normalize(viaJson.json())).toEqual(normalize(framed.json, framed.section));
  });

  it('every datatype, non-finite values, INT64 past 2^53 and a zero-size tensor round trip bit for bit', async () => {
    const { payload, headerLength } = frame({ graph: identityGraph, inputs: ALL, encoding: 'binary' });
    const got = unframe(await postFramed(app, '/v1/evaluate', payload, headerLength));
    const outputs = got.json.outputs as Record<string, { shape: number[]; datatype: string; binary_data_offset: number; binary_data_size: number }>;
    for (const [k, v] of Object.entries(ALL)) {
      const o = outputs[`out_${k}`]!;
      expect(o.shape).toEqual(v.shape);
      expect(o.datatype).toBe(v.datatype);
      expect(got.section.subarray(o.binary_data_offset, o.binary_data_offset + o.binary_data_size).equals(bytesOf(v.data)), k).toBe(true);
    }
    expect(outputs.out_empty!.binary_data_size).toBe(0);
  });

  it('gradcheck and shapes answer framed (with an empty binary section) and read binary inputs', async () => {
    const { payload, headerLength } = frame({ graph: halfSquared, inputs: { x: x64, w: w64 }, of: 'loss', wrt: ['x', 'w'], encoding: 'binary' });
    const gc = unframe(await postFramed(app, '/v1/gradcheck', payload, headerLength));
    expect(gc.json.ok).toBe(true);
    expect(gc.section.length).toBe(0);
    const sh = frame({ graph: halfSquared, inputs: { x: t('FP64', [4, 2], new Float64Array(8)), w: w64 } });
    const r = await postFramed(app, '/v1/shapes', sh.payload, sh.headerLength, { accept: 'application/octet-stream' });
    const got = unframe(r);
    expect((got.json.values as Record<string, unknown>).y).toEqual({ shape: [4, 3], datatype: 'FP64' });
  });

  it('transform: binary constants in, the derivative graph with binary constants out', async () => {
    const { payload, headerLength } = frame({ graph: halfSquared, transform: 'grad', of: 'loss', wrt: ['x'], encoding: 'binary' });
    const got = unframe(await postFramed(app, '/v1/transform', payload, headerLength));
    const graph = got.json.graph as { constants: Record<string, { shape: number[]; datatype: string; binary_data_offset: number; binary_data_size: number }> };
    const half = graph.constants.half!;
    expect(half).toMatchObject({ shape: [], datatype: 'FP64', binary_data_size: 8 });
    expect(got.section.readDoubleLE(half.binary_data_offset)).toBe(0.5);
    // The same request in JSON gives the same graph; there, the constants the rules added stay JSON data.
    const json = (await app.inject({ method: 'POST', url: '/v1/transform', payload: asB64({ graph: halfSquared, transform: 'grad', of: 'loss', wrt: ['x'] }) as object })).json();
    expect({ ...graph, constants: null }).toEqual({ ...json.graph, constants: null });
    expect(Object.keys(graph.constants).sort()).toEqual(Object.keys(json.graph.constants).sort());
    for (const [k, c] of Object.entries(json.graph.constants as Record<string, { data?: number[]; b64?: string }>)) {
      const b = graph.constants[k]!;
      const bytes = got.section.subarray(b.binary_data_offset, b.binary_data_offset + b.binary_data_size);
      const want = c.b64 !== undefined ? Buffer.from(c.b64, 'base64') : bytesOf(Float64Array.from(c.data!));
      expect(bytes.equals(want), k).toBe(true);
    }
  });

  it('binary constants that differ only in their bytes are different graphs (the engine caches by graph)', async () => {
    const scaled = (c: number) => ({
      graph: { inputs: { x: { datatype: 'FP32' } }, constants: { c: t('FP32', [2], f32(c, c)) }, nodes: [{ name: 'y', op: 'mul', inputs: ['x', 'c'] }], outputs: ['y'] },
      inputs: { x: t('FP32', [2], f32(1, 2)) },
      encoding: 'binary',
    });
    for (const c of [2, 3, 2]) {
      const { payload, headerLength } = frame(scaled(c));
      const got = unframe(await postFramed(app, '/v1/evaluate', payload, headerLength));
      expect(Array.from(new Float32Array(got.section.buffer.slice(got.section.byteOffset, got.section.byteOffset + 8)))).toEqual([c, 2 * c]);
    }
  });
});

describe('request framing', () => {
  const seedBody = () => ({
    graph: linearGraph,
    inputs: { x: t('FP32', [1, 2], f32(1, 2)), w: t('FP32', [2, 3], f32(1, 2, 3, 4, 5, 6)) },
    cotangents: { y: t('FP32', [1, 3], f32(1, -1, 2)) },
    wrt: ['x', 'w'],
  });

  it('mixes JSON data, b64 and binary tensors in one request', async () => {
    const want = await viaB64('/v1/vjp', seedBody());
    const header = Buffer.from(JSON.stringify({
      graph: linearGraph,
      inputs: { x: { shape: [1, 2], datatype: 'FP32', data: [1, 2] }, w: { shape: [2, 3], datatype: 'FP32', binary_data_size: 24 } },
      cotangents: { y: { shape: [1, 3], datatype: 'FP32', b64: bytesOf(f32(1, -1, 2)).toString('base64') } },
      wrt: ['x', 'w'],
      encoding: 'b64',
    }));
    const r = await postFramed(app, '/v1/vjp', Buffer.concat([header, bytesOf(f32(1, 2, 3, 4, 5, 6))]), header.length);
    expect(r.statusCode, r.body).toBe(200);
    expect(normalize(r.json())).toEqual(want);
  });

  it('without offsets, blobs follow the JSON text, also when keys are integer-like (which JSON.parse moves first)', async () => {
    const graph = { inputs: { b: { datatype: 'FP32' }, 1: { datatype: 'FP32' }, 0: { datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'sub', inputs: ['b', '1'] }, { name: 'z', op: 'sub', inputs: ['y', '0'] }], outputs: ['z'] };
    // "b" first in the text, then "1", then "0": the blobs are in that order.
    const header = Buffer.from(`{"graph": ${JSON.stringify(graph)}, "inputs": {"b": {"shape": [1], "datatype": "FP32", "binary_data_size": 4}, "1": {"shape": [1], "datatype": "FP32", "binary_data_size": 4}, "0": {"shape": [1], "datatype": "FP32", "binary_data_size": 4}}, "encoding": "json"}`);
    const r = await postFramed(app, '/v1/evaluate', Buffer.concat([header, bytesOf(f32(100, 10, 1))]), header.length);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().outputs.z.data).toEqual([89]);
  });

  it('takes explicit binary_data_offset, also mixed with blobs that follow the one before', async () => {
    const header = Buffer.from(JSON.stringify({
      graph: linearGraph,
      inputs: { x: { shape: [1, 2], datatype: 'FP32', binary_data_size: 8, binary_data_offset: 36 }, w: { shape: [2, 3], datatype: 'FP32', binary_data_size: 24, binary_data_offset: 0 } },
      cotangents: { y: { shape: [1, 3], datatype: 'FP32', binary_data_size: 12 } }, // right after w, the tensor before it in the text: 24
      wrt: ['x', 'w'], encoding: 'b64',
    }));
    const r = await postFramed(app, '/v1/vjp', Buffer.concat([header, bytesOf(f32(1, 2, 3, 4, 5, 6)), bytesOf(f32(1, -1, 2)), bytesOf(f32(1, 2))]), header.length);
    expect(r.statusCode, r.body).toBe(200);
    expect(normalize(r.json())).toEqual(await viaB64('/v1/vjp', seedBody()));
  });

  it('views aligned blobs in the request body and copies misaligned ones once', async () => {
    let seen: Tensors = {};
    const base = await engineWith({});
    const spy = await makeApp({ engine: { ...base, evaluate: (g, inputs, o, ro) => { seen = inputs; return base.evaluate(g, inputs, o, ro); } } });
    try {
      const body = { graph: { inputs: { a: { datatype: 'FP64' } }, nodes: [{ name: 'b', op: 'neg', inputs: ['a'] }], outputs: ['b'] }, inputs: { a: t('FP64', [512], new Float64Array(512).fill(1.25)) } };
      // Of eight header lengths, exactly one puts the FP64 blob on an 8-byte boundary of the body: that one is viewed
      // in place (its buffer is the whole body), the others are copied once into arrays of their own.
      let views = 0;
      for (const pad of [0, 1, 2, 3, 4, 5, 6, 7]) {
        const { payload, headerLength } = frame(body, { headerPad: pad });
        const r = await postFramed(spy, '/v1/evaluate', payload, headerLength);
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json().outputs.b.data[511]).toBe(-1.25);
        const a = seen.a!.data;
        if (a.buffer.byteLength >= payload.length) views++;
        else expect(a.buffer.byteLength).toBe(a.byteLength);
      }
      expect(views).toBe(1);
    } finally {
      await spy.close();
    }
  });

  async function problem(url: string, payload: Buffer, headerLength: number | string, status = 400) {
    const r = await postFramed(app, url, payload, headerLength, { accept: 'application/octet-stream' });
    expect(r.statusCode, r.body).toBe(status);
    // Errors are problem+json even when a framed answer was asked for.
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.headers['inference-header-content-length']).toBeUndefined();
    return r.json() as { code: string; detail: string; errors: { path: string; message: string }[] };
  }

  function framedSeed(edit: (inputs: Record<string, Record<string, unknown>>) => void, blobs: Buffer[]) {
    const inputs: Record<string, Record<string, unknown>> = {
      x: { shape: [1, 2], datatype: 'FP32', binary_data_size: 8 },
      w: { shape: [2, 3], datatype: 'FP32', binary_data_size: 24 },
    };
    edit(inputs);
    const header = Buffer.from(JSON.stringify({ graph: linearGraph, inputs, encoding: 'binary' }));
    return { payload: Buffer.concat([header, ...blobs]), headerLength: header.length };
  }
  const X = bytesOf(f32(1, 2));
  const W = bytesOf(f32(1, 2, 3, 4, 5, 6));

  it('refuses blobs that run past the binary section', async () => {
    const short = framedSeed(() => {}, [X, W.subarray(0, 20)]);
    let p = await problem('/v1/evaluate', short.payload, short.headerLength);
    expect(p.code).toBe('INVALID_TENSOR');
    expect(p.errors[0]!.path).toBe('inputs.w.binary_data_size');
    expect(p.detail).toMatch(/run past the binary section of 28 bytes/);
    const far = framedSeed((i) => { i.w!.binary_data_offset = 16; }, [X, W]);
    p = await problem('/v1/evaluate', far.payload, far.headerLength);
    expect(p.errors[0]!.path).toBe('inputs.w.binary_data_offset');
  });

  it('refuses overlapping blobs', async () => {
    const { payload, headerLength } = framedSeed((i) => { i.x!.binary_data_offset = 20; i.w!.binary_data_offset = 0; }, [W, X.subarray(0, 4)]);
    const p = await problem('/v1/evaluate', payload, headerLength);
    expect(p.code).toBe('INVALID_TENSOR');
    expect(p.detail).toMatch(/overlap/);
    expect(p.errors[0]!.path).toMatch(/^inputs\.(x|w)\.binary_data_offset$/);
  });

  it('refuses bytes no tensor claims: trailing, between blobs, or a section without binary tensors', async () => {
    const trailing = framedSeed(() => {}, [X, W, Buffer.alloc(4)]);
    let p = await problem('/v1/evaluate', trailing.payload, trailing.headerLength);
    expect(p.code).toBe('INVALID_TENSOR');
    expect(p.detail).toMatch(/bytes 32 to 36 of the binary section belong to no tensor/);
    expect(p.errors[0]!.path).toBe('inputs.w.binary_data_size');
    const gap = framedSeed((i) => { i.w!.binary_data_offset = 16; }, [X, Buffer.alloc(8), W]);
    p = await problem('/v1/evaluate', gap.payload, gap.headerLength);
    expect(p.detail).toMatch(/bytes 8 to 16 of the binary section belong to no tensor/);
    expect(p.errors[0]!.path).toBe('inputs.w.binary_data_offset');
    const header = Buffer.from(JSON.stringify({ graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } }));
    p = await problem('/v1/evaluate', Buffer.concat([header, X]), header.length);
    expect(p.code).toBe('INVALID_TENSOR');
    expect(p.errors[0]!.path).toBe('(body)');
  });

  it('refuses sizes that disagree with shape and datatype, and sizes or offsets that are not byte counts', async () => {
    const wrong = framedSeed((i) => { i.w!.binary_data_size = 20; }, [X, W.subarray(0, 20)]);
    let p = await problem('/v1/evaluate', wrong.payload, wrong.headerLength);
    expect(p.code).toBe('INVALID_TENSOR');
    expect(p.errors[0]!.path).toBe('inputs.w.binary_data_size');
    expect(p.detail).toMatch(/needs 24 bytes/);
    for (const bad of [-8, 8.5, '8', null]) {
      const f = framedSeed((i) => { i.x!.binary_data_size = bad; }, [X, W]);
      p = await problem('/v1/evaluate', f.payload, f.headerLength);
      expect(p.code).toBe('INVALID_TENSOR');
      expect(p.errors[0]!.path).toBe('inputs.x.binary_data_size');
    }
    const off = framedSeed((i) => { i.x!.binary_data_offset = -1; }, [X, W]);
    p = await problem('/v1/evaluate', off.payload, off.headerLength);
    expect(p.errors[0]!.path).toBe('inputs.x.binary_data_offset');
    const both = framedSeed((i) => { i.x!.data = [1, 2]; }, [X, W]);
    p = await problem('/v1/evaluate', both.payload, both.headerLength);
    expect(p.errors[0]!.path).toBe('inputs.x.data');
    const dtype = framedSeed((i) => { i.x!.datatype = 'FP16'; }, [X, W]);
    p = await problem('/v1/evaluate', dtype.payload, dtype.headerLength);
    expect(p.errors[0]!.path).toBe('inputs.x.datatype');
  });

  it('a header length past the body, or not a number, is a 400 that says so', async () => {
    const { payload } = framedSeed(() => {}, [X, W]);
    let p = await problem('/v1/evaluate', payload, payload.length + 1);
    expect(p.code).toBe('INVALID_REQUEST');
    expect(p.detail).toMatch(new RegExp(`Inference-Header-Content-Length is ${payload.length + 1} but the body has only ${payload.length} bytes`));
    expect(p.errors[0]!.path).toBe('Inference-Header-Content-Length');
    for (const bad of ['-1', '12abc', '1e3', '']) {
      p = await problem('/v1/evaluate', payload, bad);
      expect(p.code, bad).toBe('INVALID_REQUEST');
    }
    // A length that cuts the JSON short is invalid JSON.
    p = await problem('/v1/evaluate', payload, 10);
    expect(p.code).toBe('INVALID_JSON');
  });

  it('binary_data_size in a body that is not framed, and a framed body without its header length, are explained', async () => {
    const r = await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: linearGraph, inputs: { x: { shape: [1, 2], datatype: 'FP32', binary_data_size: 8 } } } });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe('INVALID_TENSOR');
    expect(r.json().errors[0].path).toBe('inputs.x.binary_data_size');
    expect(r.json().detail).toMatch(/Inference-Header-Content-Length/);
    const { payload } = framedSeed(() => {}, [X, W]);
    const bare = await app.inject({ method: 'POST', url: '/v1/evaluate', payload, headers: { 'content-type': 'application/octet-stream' } });
    expect(bare.statusCode).toBe(400);
    expect(bare.json().code).toBe('INVALID_JSON');
    expect(bare.json().detail).toMatch(/needs the Inference-Header-Content-Length header/);
  });

  it('a binary tensor given twice under one key is refused: the blob order would be ambiguous', async () => {
    const header = Buffer.from(`{"graph": ${JSON.stringify(linearGraph)}, "inputs": {"x": {"shape": [1, 2], "datatype": "FP32", "binary_data_size": 8}, "w": {"shape": [2, 3], "datatype": "FP32", "binary_data_size": 24}, "x": {"shape": [1, 2], "datatype": "FP32", "binary_data_size": 8}}}`);
    const p = await problem('/v1/evaluate', Buffer.concat([header, X, W, X]), header.length);
    expect(p.code).toBe('INVALID_TENSOR');
    expect(p.errors[0]!.path).toBe('inputs.x');
  });

  it('engine errors on a framed request stay problem+json with their path', async () => {
    const f = frame({ graph: linearGraph, inputs: { x: t('FP32', [1, 3], f32(1, 2, 3)), w: t('FP32', [2, 3], f32(1, 2, 3, 4, 5, 6)) }, encoding: 'binary' });
    const p = await problem('/v1/evaluate', f.payload, f.headerLength, 422);
    expect(p.code).toBe('SHAPE_MISMATCH');
  });
});

describe('response framing', () => {
  const body = { graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } };

  it('Accept: application/octet-stream asks for a framed answer; explicit encoding wins; q-values are honoured', async () => {
    const ask = (accept: string, extra: Record<string, unknown> = {}) => app.inject({ method: 'POST', url: '/v1/evaluate', payload: { ...body, ...extra }, headers: { accept } });
    const framed = unframe(await ask('application/octet-stream'));
    const y = (framed.json.outputs as Record<string, { binary_data_offset: number; binary_data_size: number }>).y!;
    expect(Array.from(new Float32Array(framed.section.buffer.slice(framed.section.byteOffset + y.binary_data_offset, framed.section.byteOffset + y.binary_data_offset + y.binary_data_size)))).toEqual([9, 12, 15]);
    unframe(await ask('application/octet-stream, application/problem+json'));
    unframe(await ask('application/json;q=0.5, application/octet-stream'));
    for (const [accept, extra] of [
      ['application/octet-stream', { encoding: 'json' }],
      ['application/json, application/octet-stream;q=0.9', {}],
      ['*/*', {}],
      ['application/octet-stream;q=0', {}],
    ] as const) {
      const r = await ask(accept, extra);
      expect(r.headers['content-type'], accept).toMatch(/^application\/json/);
      expect(r.json().outputs.y.data).toEqual([9, 12, 15]);
    }
  });

  it('the JSON header is padded with spaces to 64 bytes and blobs are 64-byte aligned with zero padding between', async () => {
    // Odd sizes: 3 FP32 (12 bytes), 5 BOOL, 1 FP64 between them.
    const graph = { inputs: { a: { datatype: 'FP32' }, b: { datatype: 'BOOL' }, c: { datatype: 'FP64' } }, nodes: [{ name: 'ra', op: 'identity', inputs: ['a'] }, { name: 'rb', op: 'identity', inputs: ['b'] }, { name: 'rc', op: 'identity', inputs: ['c'] }], outputs: ['ra', 'rb', 'rc'] };
    const { payload, headerLength } = frame({ graph, inputs: { a: t('FP32', [3], f32(1, 2, 3)), b: t('BOOL', [5], new Uint8Array([1, 1, 0, 1, 1])), c: t('FP64', [1], f64(-2)) }, encoding: 'binary' });
    const got = unframe(await postFramed(app, '/v1/evaluate', payload, headerLength));
    const outs = got.json.outputs as Record<string, { binary_data_offset: number; binary_data_size: number }>;
    expect(Object.values(outs).map((o) => [o.binary_data_offset, o.binary_data_size])).toEqual([[0, 12], [64, 5], [128, 8]]);
    expect(got.section.length).toBe(136);
    // In the body the FP64 blob sits at a multiple of 8: a client views it in place.
    expect((got.headerLength + outs.rc!.binary_data_offset) % 8).toBe(0);
  });
});
