/**
 * gradserve/client against a live server over real sockets: every endpoint, typed arrays in and out, both
 * encodings, typed errors, API keys and the KServe v2 surface.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientOptions, GradserveClient, GradserveClientError, tensor, type GraphSpec } from '../../src/client/index.js';
import { startServer, type LiveServer } from './live-server.js';
import { expectClose, matmul, SEED, seedReference, transpose } from './reference.js';

const LINEAR: GraphSpec = {
  inputs: { x: { shape: [null, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } },
  nodes: [
    { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'loss', op: 'sum', inputs: ['y'] },
  ],
  outputs: ['y'],
};

/** ½|x·w|² in FP64: gradient y·wᵀ, Hessian w.r.t. x is w·wᵀ per row. */
const HALF_SQ: GraphSpec = {
  inputs: { x: { shape: [null, 2], datatype: 'FP64' }, w: { shape: [2, 3], datatype: 'FP64' } },
  constants: { half: tensor(new Float64Array([0.5]), []) },
  nodes: [
    { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'y2', op: 'square', inputs: ['y'] },
    { name: 's', op: 'sum', inputs: ['y2'] },
    { name: 'loss', op: 'mul', inputs: ['s', 'half'] },
  ],
  outputs: ['loss'],
};

const x32 = () => tensor(new Float32Array(SEED.x), [1, 2]);
const w32 = () => tensor(new Float32Array(SEED.w), [2, 3]);
const x64 = () => tensor(new Float64Array(SEED.x), [1, 2]);
const w64 = () => tensor(new Float64Array(SEED.w), [2, 3]);

let server: LiveServer;
let gs: GradserveClient;
beforeAll(async () => {
  server = await startServer();
  gs = new GradserveClient(server.url);
});
afterAll(async () => {
  await server?.close();
});

describe('TypeScript client (gradserve/client) against a live server', () => {
  it('vjp: the seed example with Float32Array in and out', async () => {
    const ref = seedReference();
    const r = await gs.vjp({ graph: LINEAR, inputs: { x: x32(), w: w32() }, cotangents: { y: tensor(new Float32Array(SEED.dy), [1, 3]) }, wrt: ['x', 'w'] });
    expect(r.outputs.y!.data).toBeInstanceOf(Float32Array);
    expect(r.outputs.y!.shape).toEqual([1, 3]);
    expectClose(r.outputs.y!.data as Float32Array, ref.y);
    expect(r.gradients.x!.data).toBeInstanceOf(Float32Array);
    expect(r.gradients.x!.shape).toEqual([1, 2]);
    expectClose(r.gradients.x!.data as Float32Array, ref.dx);
    expect(r.gradients.w!.shape).toEqual([2, 3]);
    expectClose(r.gradients.w!.data as Float32Array, ref.dw);
  });

  it('grad of a scalar, with nested-array shorthand inputs and outputs including `of`', async () => {
    const r = await gs.grad({ graph: LINEAR, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] }, of: 'loss', wrt: ['x', 'w'] });
    const ones = seedReference([1, 1, 1]);
    expect(Array.from(r.outputs.loss!.data as Float32Array)).toEqual([36]);
    expect(r.outputs.loss!.shape).toEqual([]);
    expectClose(r.gradients.x!.data as Float32Array, ones.dx);
    expectClose(r.gradients.w!.data as Float32Array, ones.dw);
  });

  it('large tensors travel framed by default, as b64 or JSON when asked, and come back bit-exact every way', async () => {
    const n = 256;
    const x = new Float64Array(n * n);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i) * 1e3 + 1 / (i + 1);
    x[7] = NaN;
    x[8] = -Infinity;
    const graph: GraphSpec = { inputs: { a: { datatype: 'FP64' } }, nodes: [{ name: 'b', op: 'neg', inputs: ['a'] }], outputs: ['b'] };
    const seen: Exchange[] = [];
    const viaBinary = await spying(seen).evaluate({ graph, inputs: { a: tensor(x, [n, n]) } });
    expect(seen[0]!.requestType).toBe('application/octet-stream');
    expect(seen[0]!.answerType).toBe('application/octet-stream');
    const viaB64 = await spying(seen, { binary: 'never' }).evaluate({ graph, inputs: { a: tensor(x, [n, n]) } });
    expect(seen[1]!.body).toContain('"b64"');
    expect(seen[1]!.body).toContain('"encoding":"b64"');
    const viaJson = await new GradserveClient({ baseUrl: server.url, binary: 'never', b64Threshold: Infinity, responseEncoding: 'json' }).evaluate({ graph, inputs: { a: tensor(x, [n, n]) } });
    // The default transport in Node (node:http) and fetch, framed both ways.
    const viaNode = await new GradserveClient({ baseUrl: server.url, transport: 'node' }).evaluate({ graph, inputs: { a: tensor(x, [n, n]) } });
    const viaFetch = await new GradserveClient({ baseUrl: server.url, transport: 'fetch' }).evaluate({ graph, inputs: { a: tensor(x, [n, n]) } });
    for (const r of [viaBinary, viaB64, viaJson, viaNode, viaFetch]) {
      const b = r.outputs.b!.data as Float64Array;
      expect(b).toBeInstanceOf(Float64Array);
      expect(r.outputs.b!.shape).toEqual([n, n]);
      expect(Array.from(b)).toEqual(Array.from(x, (v) => -v));
    }
  });

  it('jvp: the tangent of y = x·w along dx is dx·w', async () => {
    const dx = [0.5, -2];
    const r = await gs.jvp({ graph: LINEAR, inputs: { x: x32(), w: w32() }, tangents: { x: tensor(new Float32Array(dx), [1, 2]) }, of: ['y'] });
    expect(r.tangents.y!.shape).toEqual([1, 3]);
    expectClose(r.tangents.y!.data as Float32Array, matmul(dx, SEED.w, 1, 2, 3));
  });

  it('jacobian: shape of ++ wrt in every mode, and the mode used is reported', async () => {
    for (const mode of ['forward', 'reverse', 'auto'] as const) {
      const r = await gs.jacobian({ graph: LINEAR, inputs: { x: x32(), w: w32() }, of: ['y'], wrt: ['x', 'w'], mode });
      expect(r.jacobians.y!.x!.shape).toEqual([1, 3, 1, 2]);
      expectClose(r.jacobians.y!.x!.data as Float32Array, transpose(SEED.w, 2, 3));
      // dy_m/dw_dk = x_d when k = m.
      const jw = r.jacobians.y!.w!;
      expect(jw.shape).toEqual([1, 3, 2, 3]);
      const ref: number[] = [];
      for (let m = 0; m < 3; m++) for (let d = 0; d < 2; d++) for (let k = 0; k < 3; k++) ref.push(k === m ? SEED.x[d]! : 0);
      expectClose(jw.data as Float32Array, ref);
      if (mode !== 'auto') expect(r.mode).toBe(mode);
      else expect(r.mode).toBe('reverse'); // 3 output elements < 2 + 6 input elements -> reverse (API.md)
    }
  });

  it('hvp and hessian of ½|x·w|²: w·wᵀ in FP64', async () => {
    const wwT = seedReference().hessHalfSquared;
    const v = [1, -1];
    const h = await gs.hvp({ graph: HALF_SQ, inputs: { x: x64(), w: w64() }, of: 'loss', vectors: { x: tensor(new Float64Array(v), [1, 2]) } });
    expect(h.hvp.x!.data).toBeInstanceOf(Float64Array);
    expectClose(h.hvp.x!.data as Float64Array, matmul(v, wwT, 1, 2, 2));
    expectClose(h.gradients.x!.data as Float64Array, matmul(matmul(SEED.x, SEED.w, 1, 2, 3), transpose(SEED.w, 2, 3), 1, 3, 2));
    const H = await gs.hessian({ graph: HALF_SQ, inputs: { x: x64(), w: w64() }, of: 'loss', wrt: ['x'] });
    expect(H.hessians.x!.x!.shape).toEqual([1, 2, 1, 2]);
    expectClose(H.hessians.x!.x!.data as Float64Array, wwT);
  });

  it('gradcheck passes for an FP64 graph and reports per-input figures', async () => {
    const r = await gs.gradcheck({ graph: HALF_SQ, inputs: { x: x64(), w: w64() }, of: 'loss', wrt: ['x', 'w'] });
    expect(r.ok).toBe(true);
    expect(Object.keys(r.perInput).sort()).toEqual(['w', 'x']);
    expect(r.maxAbsError).toBeLessThan(1e-4);
    expect(r.perInput.x!.ok).toBe(true);
  });

  it('transform: the returned grad graph evaluates to the same gradient', async () => {
    const t = await gs.transform({ graph: LINEAR, transform: 'grad', of: 'loss', wrt: ['w'] });
    expect(t.graph.outputs).toContain('grad:w');
    const r = await gs.evaluate({ graph: t.graph, inputs: { x: x32(), w: w32() }, outputs: ['grad:w'] });
    expectClose(r.outputs['grad:w']!.data as Float32Array, seedReference([1, 1, 1]).dw);
  });

  it('shapes: inference and cost without executing, from {shape, datatype} only', async () => {
    const r = await gs.shapes({ graph: LINEAR, inputs: { x: { shape: [64, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } } });
    expect(r.values.y).toEqual({ shape: [64, 3], datatype: 'FP32' });
    expect(r.values.loss).toEqual({ shape: [], datatype: 'FP32' });
    expect(r.flops).toBeGreaterThan(0);
    expect(r.peakBytes).toBeGreaterThan(0);
  });

  it('ops: the catalogue lists matmul as differentiable with a JSON Schema for its attrs', async () => {
    const r = await gs.ops();
    const mm = r.ops.find((o) => o.name === 'matmul');
    expect(mm?.differentiable).toBe(true);
    expect(typeof mm?.attrs).toBe('object');
    expect(r.ops.find((o) => o.name === 'equal')?.differentiable).toBe(false);
  });

  it('service errors raise GradserveClientError with code, status, detail and errors[].path', async () => {
    const bad = { ...LINEAR, nodes: [...LINEAR.nodes, { name: 'z', op: 'nosuchop', inputs: ['y'] }] };
    const e1 = await gs.evaluate({ graph: bad, inputs: { x: x32(), w: w32() } }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(GradserveClientError);
    const p = e1 as GradserveClientError;
    expect(p.code).toBe('UNKNOWN_OP');
    expect(p.status).toBe(422);
    expect(p.detail).toContain('nosuchop');
    expect(p.errors.map((x) => x.path)).toContain('graph.nodes[2].op');

    const e2 = await gs.grad({ graph: LINEAR, inputs: { x: x32(), w: w32() }, of: 'y', wrt: ['x'] }).catch((e: unknown) => e);
    expect((e2 as GradserveClientError).code).toBe('NOT_SCALAR');
    const e3 = await gs.vjp({ graph: LINEAR, inputs: { x: x32(), w: w32() }, cotangents: { y: tensor(new Float32Array(2), [1, 2]) }, wrt: ['x'] }).catch((e: unknown) => e);
    expect((e3 as GradserveClientError).code).toBe('SHAPE_MISMATCH');
    expect((e3 as GradserveClientError).detail).toMatch(/\[1, 2\]/);
  });

  it('transport failures are typed too: NETWORK_ERROR, TIMEOUT and ABORTED', async () => {
    // A port that was just free: nothing listens there any more.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const dead = new GradserveClient(`http://127.0.0.1:${port}`); // node:http in Node
    const down = (await dead.ops().catch((e: unknown) => e)) as GradserveClientError;
    expect(down.code).toBe('NETWORK_ERROR');
    expect(down.detail).toContain(`127.0.0.1:${port}/v1/ops: connect ECONNREFUSED`);
    const deadFetch = new GradserveClient({ baseUrl: `http://127.0.0.1:${port}`, transport: 'fetch' });
    const downFetch = (await deadFetch.ops().catch((e: unknown) => e)) as GradserveClientError;
    expect(downFetch.code).toBe('NETWORK_ERROR');
    expect(downFetch.detail).toContain(`127.0.0.1:${port}/v1/ops: fetch failed: ECONNREFUSED`);
    // A server that accepts connections and never answers: the node transport's timeout and abort.
    const mute = createServer(() => undefined);
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const mutePort = (mute.address() as AddressInfo).port;
    try {
      const silent = new GradserveClient({ baseUrl: `http://127.0.0.1:${mutePort}`, timeoutMs: 50 });
      expect(((await silent.ops().catch((e: unknown) => e)) as GradserveClientError).code).toBe('TIMEOUT');
      const c = new AbortController();
      const waiting = new GradserveClient(`http://127.0.0.1:${mutePort}`).ops({ signal: c.signal }).catch((e: unknown) => e);
      c.abort();
      expect(((await waiting) as GradserveClientError).code).toBe('ABORTED');
    } finally {
      mute.close();
    }
    // A fetch that never answers until aborted, to exercise the client's own clock and the caller's signal.
    const hang: typeof fetch = (_u, init) => new Promise((_r, reject) => init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    const slow = new GradserveClient({ baseUrl: server.url, fetch: hang, timeoutMs: 50 });
    expect(((await slow.ops().catch((e: unknown) => e)) as GradserveClientError).code).toBe('TIMEOUT');
    const ctrl = new AbortController();
    const pending = new GradserveClient({ baseUrl: server.url, fetch: hang }).ops({ signal: ctrl.signal }).catch((e: unknown) => e);
    ctrl.abort();
    expect(((await pending) as GradserveClientError).code).toBe('ABORTED');
  });

  it('Open Inference Protocol: health, server metadata, metrics and the OpenAPI document', async () => {
    expect(await gs.live()).toBe(true);
    expect(await gs.ready()).toBe(true);
    const meta = await gs.serverMetadata();
    expect(meta.extensions).toContain('binary_tensor_data');
    expect(await gs.metrics()).toMatch(/^# (HELP|TYPE) /m);
    const doc = await gs.openapi();
    expect(String(doc.openapi)).toMatch(/^3\.1/);
  });
});

interface Exchange {
  requestType: string | null;
  headerLength: string | null;
  accept: string | null;
  body: string | undefined;
  answerType: string | null;
}

/** A client whose every exchange is recorded (request content type and body, answer content type). */
function spying(seen: Exchange[], options: Partial<ClientOptions> = {}): GradserveClient {
  return new GradserveClient({
    baseUrl: server.url,
    ...options,
    fetch: async (u, init) => {
      const h = new Headers(init?.headers);
      const res = await fetch(u, init);
      seen.push({
        requestType: h.get('content-type'),
        headerLength: h.get('inference-header-content-length'),
        accept: h.get('accept'),
        body: typeof init?.body === 'string' ? init.body : undefined,
        answerType: res.headers.get('content-type'),
      });
      return res;
    },
  });
}

describe('TypeScript client: binary framing', () => {
  it('frames a request above 4 KiB of tensor bytes and asks for a framed answer; keeps smaller ones JSON', async () => {
    const seen: Exchange[] = [];
    const c = spying(seen);
    const graph: GraphSpec = { inputs: { a: { datatype: 'FP32' } }, nodes: [{ name: 'b', op: 'neg', inputs: ['a'] }], outputs: ['b'] };
    await c.evaluate({ graph, inputs: { a: new Float32Array(1024) } }); // 4096 bytes: not above the threshold
    await c.evaluate({ graph, inputs: { a: new Float32Array(1025) } });
    expect(seen.map((e) => e.requestType)).toEqual(['application/json', 'application/octet-stream']);
    expect(seen[0]!.body).toContain('"encoding":"b64"');
    expect(seen[1]!.accept).toMatch(/^application\/octet-stream/);
    expect(Number(seen[1]!.headerLength) % 8).toBe(0);
    expect(seen.map((e) => e.answerType?.split(';')[0])).toEqual(['application/json', 'application/octet-stream']);
    // Forced either way, and a framed answer for a JSON request.
    await spying(seen, { binary: 'always' }).evaluate({ graph, inputs: { a: new Float32Array(2) } });
    await spying(seen, { binary: 'never' }).evaluate({ graph, inputs: { a: new Float32Array(5000) } });
    await spying(seen, { binaryThresholdBytes: 1 << 20 }).evaluate({ graph, inputs: { a: new Float32Array(5000) } });
    const framedAnswer = await spying(seen, { responseEncoding: 'binary' }).evaluate({ graph, inputs: { a: new Float32Array([1, -2]) } });
    expect(seen.slice(2).map((e) => [e.requestType, e.answerType?.split(';')[0]])).toEqual([
      ['application/octet-stream', 'application/octet-stream'],
      ['application/json', 'application/json'],
      ['application/json', 'application/json'],
      ['application/json', 'application/octet-stream'],
    ]);
    expect(Array.from(framedAnswer.outputs.b!.data as Float32Array)).toEqual([-1, 2]);
  });

  it('answers are typed arrays viewing the one buffer the answer was read into, no copies', async () => {
    const graph: GraphSpec = { inputs: { a: { datatype: 'FP64' }, c: { datatype: 'FP32' } }, nodes: [{ name: 'b', op: 'neg', inputs: ['a'] }, { name: 'd', op: 'neg', inputs: ['c'] }], outputs: ['b', 'd'] };
    const r = await gs.evaluate({ graph, inputs: { a: new Float64Array(1000).fill(2), c: new Float32Array(3).fill(1) } });
    const b = r.outputs.b!.data as Float64Array;
    const d = r.outputs.d!.data as Float32Array;
    expect(b.buffer).toBe(d.buffer);
    expect(b.buffer.byteLength).toBeGreaterThan(b.byteLength + d.byteLength);
    expect(b[999]).toBe(-2);
    expect(Array.from(d)).toEqual([-1, -1, -1]);
  });

  it('every datatype, INT64 past 2^53, BOOL and a zero-size tensor round trip framed, in inputs and graph constants', async () => {
    const f32 = new Float32Array(2000).map((_, i) => i / 7);
    f32[3] = NaN;
    f32[4] = -Infinity;
    const i64 = new BigInt64Array([2n ** 62n + 1n, -(2n ** 63n), 5n]);
    const i32 = new Int32Array([2 ** 31 - 1, -(2 ** 31), 0]);
    const bools = new Uint8Array([1, 0, 1, 1, 0]);
    const graph: GraphSpec = {
      inputs: { f: {}, l: { datatype: 'INT64' }, i: { datatype: 'INT32' }, e: { datatype: 'FP64' } },
      constants: { k: tensor(bools, [5]) },
      nodes: ['f', 'l', 'i', 'k', 'e'].map((n) => ({ name: `r_${n}`, op: 'identity', inputs: [n] })),
      outputs: ['r_f', 'r_l', 'r_i', 'r_k', 'r_e'],
    };
    const seen: Exchange[] = [];
    const r = await spying(seen, { binary: 'always' }).evaluate({ graph, inputs: { f: tensor(f32, [2000]), l: tensor(i64, [3]), i: tensor(i32, [3]), e: tensor(new Float64Array(0), [0, 4]) } });
    expect(seen[0]!.requestType).toBe('application/octet-stream');
    expect(Array.from(r.outputs.r_f!.data as Float32Array)).toEqual(Array.from(f32));
    expect(r.outputs.r_l!.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(r.outputs.r_l!.data as BigInt64Array)).toEqual(Array.from(i64));
    expect(Array.from(r.outputs.r_i!.data as Int32Array)).toEqual(Array.from(i32));
    expect(r.outputs.r_k!.datatype).toBe('BOOL');
    expect(Array.from(r.outputs.r_k!.data as Uint8Array)).toEqual(Array.from(bools));
    expect(r.outputs.r_e!.shape).toEqual([0, 4]);
    expect(r.outputs.r_e!.data.length).toBe(0);
  });

  it('cotangents, tangents and vectors travel framed; the answers equal those of the JSON path', async () => {
    const n = 64;
    const graph: GraphSpec = { ...HALF_SQ, inputs: { x: { shape: [null, n], datatype: 'FP64' }, w: { shape: [n, n], datatype: 'FP64' } }, outputs: ['y', 'loss'] };
    const x = tensor(Float64Array.from({ length: n }, (_, i) => Math.cos(i)), [1, n]);
    const w = tensor(Float64Array.from({ length: n * n }, (_, i) => Math.sin(i) / n), [n, n]);
    const v = tensor(Float64Array.from({ length: n }, (_, i) => (i % 3) - 1), [1, n]);
    const dy = tensor(Float64Array.from({ length: n }, (_, i) => i / n), [1, n]);
    const json = new GradserveClient({ baseUrl: server.url, binary: 'never' });
    const seen: Exchange[] = [];
    const framed = spying(seen, { binary: 'always' });
    const calls = [
      (c: GradserveClient) => c.vjp({ graph, inputs: { x, w }, cotangents: { y: dy }, wrt: ['x', 'w'] }),
      (c: GradserveClient) => c.jvp({ graph, inputs: { x, w }, tangents: { x: v }, of: ['y'] }),
      (c: GradserveClient) => c.hvp({ graph, inputs: { x, w }, of: 'loss', vectors: { x: v } }),
      (c: GradserveClient) => c.jacobian({ graph, inputs: { x, w }, of: ['y'], wrt: ['x'] }),
      (c: GradserveClient) => c.hessian({ graph, inputs: { x, w }, of: 'loss', wrt: ['x'] }),
    ];
    for (const call of calls) {
      const a = await call(json);
      const b = await call(framed);
      expect(seen.at(-1)!.answerType).toBe('application/octet-stream');
      expect(JSON.stringify(b, (_k, val: unknown) => (ArrayBuffer.isView(val) ? Array.from(val as Float64Array) : val))).toBe(JSON.stringify(a, (_k, val: unknown) => (ArrayBuffer.isView(val) ? Array.from(val as Float64Array) : val)));
    }
    const gc = await framed.gradcheck({ graph, inputs: { x, w }, of: 'loss', wrt: ['x'] });
    expect(gc.ok).toBe(true);
    const sh = await framed.shapes({ graph, inputs: { x, w } });
    expect(sh.values.y).toEqual({ shape: [1, n], datatype: 'FP64' });
  });

  it('transform with framed constants returns a JSON graph (b64 constants) that evaluates again', async () => {
    const big: GraphSpec = { ...LINEAR, constants: { scale: tensor(new Float32Array(2000).fill(0.5), [2000]) }, nodes: [...LINEAR.nodes, { name: 's', op: 'sum', inputs: ['scale'] }, { name: 'l2', op: 'mul', inputs: ['loss', 's'] }], outputs: ['l2'] };
    for (const encoding of [undefined, 'binary'] as const) {
      const t = await gs.transform({ graph: big, transform: 'grad', of: 'l2', wrt: ['w'], encoding });
      expect(typeof t.graph.constants!.scale!.b64).toBe('string');
      const r = await gs.evaluate({ graph: t.graph, inputs: { x: x32(), w: w32() }, outputs: ['grad:w'] });
      expectClose(r.outputs['grad:w']!.data as Float32Array, seedReference([1000, 1000, 1000]).dw);
    }
  });

  it('service errors on a framed request are still typed problem+json errors', async () => {
    const e = (await gs.vjp({ graph: LINEAR, inputs: { x: tensor(new Float32Array(2000), [1000, 2]), w: w32() }, cotangents: { y: tensor(new Float32Array(2), [1, 2]) }, wrt: ['x'] }).catch((x: unknown) => x)) as GradserveClientError;
    expect(e).toBeInstanceOf(GradserveClientError);
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.status).toBe(422);
  });
});

describe('TypeScript client with a model repository and API keys', () => {
  let dir: string;
  let keyed: LiveServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gradserve-models-'));
    writeFileSync(join(dir, 'linear.json'), JSON.stringify(LINEAR));
    writeFileSync(join(dir, 'cube.json'), JSON.stringify({
      graph: {
        inputs: { x: { shape: [null], datatype: 'FP64' } },
        nodes: [
          { name: 'x3', op: 'mul', inputs: ['x', 'x2'] },
          { name: 'x2', op: 'square', inputs: ['x'] },
          { name: 'total', op: 'sum', inputs: ['x3'] },
        ],
        outputs: ['x3', 'total'],
      },
    }));
    keyed = await startServer({ modelRepository: dir, apiKeys: ['k-123'] });
  });
  afterAll(async () => {
    await keyed?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without the key: 401 UNAUTHORIZED; health stays open; with the key the call goes through', async () => {
    const anon = new GradserveClient(keyed.url);
    const e = (await anon.ops().catch((x: unknown) => x)) as GradserveClientError;
    expect(e.code).toBe('UNAUTHORIZED');
    expect(e.status).toBe(401);
    expect(await anon.live()).toBe(true);
    const ok = await new GradserveClient({ baseUrl: keyed.url, apiKey: 'k-123' }).ops();
    expect(ok.ops.length).toBeGreaterThan(10);
  });

  it('infer on a repository model, with a gradient requested as an output named grad:<wrt>', async () => {
    const c = new GradserveClient({ baseUrl: keyed.url, apiKey: 'k-123' });
    const md = await c.modelMetadata('linear');
    expect(md.inputs.map((i) => i.name).sort()).toEqual(['w', 'x']);
    const r = await c.infer('linear', {
      inputs: { x: x32(), w: w32() },
      outputs: ['y', { name: 'grad:w', parameters: { of: 'loss' } }],
    });
    expect(r.modelName).toBe('linear');
    expectClose(r.outputs.y!.data as Float32Array, seedReference().y);
    expectClose(r.outputs['grad:w']!.data as Float32Array, seedReference([1, 1, 1]).dw);
    expect(await c.modelReady('linear')).toBe(true);
    const missing = (await c.modelMetadata('nope').catch((x: unknown) => x)) as GradserveClientError;
    expect(missing.status).toBe(404);
    expect(missing.detail).toContain('nope');
  });

  it('infer with the binary tensor data extension: large inputs and outputs as raw bytes, same values as JSON', async () => {
    const n = 5000;
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = (i - n / 2) / 1000;
    const seen: { type: string | null; headerLength: string | null; answerHeaderLength?: string | null }[] = [];
    const c = new GradserveClient({
      baseUrl: keyed.url,
      apiKey: 'k-123',
      fetch: async (u, init) => {
        const h = new Headers(init?.headers);
        const res = await fetch(u, init);
        seen.push({ type: h.get('content-type'), headerLength: h.get('inference-header-content-length'), answerHeaderLength: res.headers.get('inference-header-content-length') });
        return res;
      },
    });
    const req = { inputs: { x: tensor(x, [n]) }, outputs: ['x3', { name: 'grad:x', parameters: { of: 'total' } }] };
    const bin = await c.infer('cube', req, { binaryOutputs: true });
    expect(seen[0]!.type).toBe('application/octet-stream');
    expect(Number(seen[0]!.headerLength)).toBeGreaterThan(0);
    expect(Number(seen[0]!.answerHeaderLength)).toBeGreaterThan(0); // the answer came back binary too
    const json = await c.infer('cube', req, { binaryThreshold: Infinity });
    expect(seen[1]!.type).toBe('application/json');
    expect(seen[1]!.answerHeaderLength).toBeNull();
    for (const r of [bin, json]) {
      const x3 = r.outputs.x3!.data as Float64Array;
      const g = r.outputs['grad:x']!.data as Float64Array;
      expect(x3).toBeInstanceOf(Float64Array);
      expect(r.outputs.x3!.shape).toEqual([n]);
      for (const i of [0, 1, 2499, 2500, 4999]) {
        expect(x3[i]).toBeCloseTo(x[i]! ** 3, 12);
        expect(g[i]).toBeCloseTo(3 * x[i]! ** 2, 12);
      }
    }
    expect(Array.from(bin.outputs.x3!.data as Float64Array)).toEqual(Array.from(json.outputs.x3!.data as Float64Array));
  });
});

describe('TypeScript client: the MLP walkthrough of docs/clients.md', () => {
  it('trains a 2-8-1 tanh MLP on XOR by calling /v1/grad each step; the loss falls below 0.05', async () => {
    const graph: GraphSpec = {
      inputs: { x: { shape: [null, 2] }, t: { shape: [null, 1] }, w1: {}, b1: {}, w2: {}, b2: {} },
      nodes: [
        { name: 'h', op: 'tanh', inputs: ['h_pre'] },
        { name: 'h_pre', op: 'add', inputs: ['h_mm', 'b1'] },
        { name: 'h_mm', op: 'matmul', inputs: ['x', 'w1'] },
        { name: 'o_mm', op: 'matmul', inputs: ['h', 'w2'] },
        { name: 'logits', op: 'add', inputs: ['o_mm', 'b2'] },
        { name: 'loss', op: 'binary_cross_entropy_with_logits', inputs: ['logits', 't'] },
      ],
      outputs: ['loss'],
    };
    // A fixed, deterministic initialisation (a tiny LCG) so the test is reproducible.
    let s = 12345;
    const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const params = {
      w1: tensor(Float32Array.from({ length: 16 }, rand), [2, 8]),
      b1: tensor(new Float32Array(8), [8]),
      w2: tensor(Float32Array.from({ length: 8 }, rand), [8, 1]),
      b2: tensor(new Float32Array(1), [1]),
    };
    const x = tensor(new Float32Array([0, 0, 0, 1, 1, 0, 1, 1]), [4, 2]);
    const t = tensor(new Float32Array([0, 1, 1, 0]), [4, 1]);
    const losses: number[] = [];
    for (let step = 0; step < 400; step++) {
      const { outputs, gradients } = await gs.grad({ graph, inputs: { x, t, ...params }, of: 'loss', wrt: Object.keys(params) });
      losses.push(outputs.loss!.data[0] as number);
      for (const [k, p] of Object.entries(params)) {
        const g = gradients[k]!.data as Float32Array;
        expect(gradients[k]!.shape).toEqual(p.shape);
        for (let i = 0; i < p.data.length; i++) p.data[i]! -= 1.0 * g[i]!;
      }
    }
    expect(losses[0]).toBeGreaterThan(0.5);
    expect(losses.at(-1)!).toBeLessThan(0.05);
    expect(losses.at(-1)!).toBeLessThan(losses[100]!);
  });
});

describe('TypeScript client: 413 TOO_LARGE from the Jacobian size guard', () => {
  let small: LiveServer;
  beforeAll(async () => {
    small = await startServer({ requestMemoryBytes: 16 * 1024 * 1024 });
  });
  afterAll(async () => {
    await small?.close();
  });

  it('a Jacobian over the memory budget is refused before allocating, naming its size and vjp/jvp', async () => {
    const d = 256;
    const c = new GradserveClient(small.url);
    const big: GraphSpec = { ...LINEAR, inputs: { x: { shape: [null, d], datatype: 'FP32' }, w: { shape: [d, d], datatype: 'FP32' } } };
    const inputs = { x: tensor(new Float32Array(d), [1, d]), w: tensor(new Float32Array(d * d), [d, d]) };
    // dy/dx is 256 × 256 floats (256 KiB): it must pass, so the refusal below is about size alone.
    const ok = await c.jacobian({ graph: big, inputs, of: ['y'], wrt: ['x'] });
    expect(ok.jacobians.y!.x!.shape).toEqual([1, d, 1, d]);
    const err = (await c.jacobian({ graph: big, inputs, of: ['y'], wrt: ['w'] }).catch((x: unknown) => x)) as GradserveClientError;
    expect(err).toBeInstanceOf(GradserveClientError);
    expect(err.code).toBe('TOO_LARGE');
    expect(err.status).toBe(413);
    expect(err.detail).toContain('64 MiB'); // 256 × 256·256 FP32 values
    expect(err.detail).toMatch(/vjp|jvp/);
  });
});
