/** Every error code of API.md's catalogue that reaches a client over HTTP, as application/problem+json. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.types.js';
import { ERROR_CATALOGUE } from '../../src/errors.js';
import type { GradserveApp } from '../../src/server/app.js';
import { b64, engineWith, linearGraph, makeApp, sleepUnlessAborted } from './helpers.js';

type Inject = { status: number; body: Record<string, any>; headers: Record<string, unknown> };

async function call(app: GradserveApp, url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Inject> {
  const r = await app.inject({
    method: payload === undefined ? 'GET' : 'POST',
    url,
    ...(payload === undefined ? {} : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
    headers: { 'content-type': 'application/json', ...headers },
  });
  let body: Record<string, any> = {};
  try { body = r.json(); } catch { /* not JSON */ }
  return { status: r.statusCode, body, headers: r.headers };
}

/** Asserts a well-formed problem for `code` and returns it. */
function expectProblem(r: Inject, code: keyof typeof ERROR_CATALOGUE): Record<string, any> {
  expect(r.body.code, JSON.stringify(r.body)).toBe(code);
  expect(r.status).toBe(ERROR_CATALOGUE[code].status);
  expect(String(r.headers['content-type'])).toMatch(/^application\/problem\+json/);
  expect(r.body.status).toBe(r.status);
  expect(r.body.title).toBe(ERROR_CATALOGUE[code].title);
  expect(typeof r.body.type).toBe('string');
  expect(typeof r.body.detail).toBe('string');
  expect(r.body.detail.length).toBeGreaterThan(0);
  return r.body;
}

const g1 = (nodes: unknown[], inputs: unknown = { x: { shape: [2], datatype: 'FP32' } }, outputs = ['y']) => ({ inputs, nodes, outputs });

describe('errors rendered by the HTTP layer', () => {
  let app: GradserveApp;
  beforeAll(async () => { app = await makeApp({ bodyLimitBytes: 64 * 1024, maxNodes: 5, maxTensorElements: 1000 }); });
  afterAll(async () => { await app.close(); });

  it('INVALID_JSON: empty body, broken JSON, bare NaN/Infinity tokens', async () => {
    expectProblem(await call(app, '/v1/evaluate', ''), 'INVALID_JSON');
    expectProblem(await call(app, '/v1/evaluate', '{"graph": '), 'INVALID_JSON');
    const nan = expectProblem(await call(app, '/v1/evaluate', '{"graph": {"nodes": []}, "inputs": {"x": NaN}}'), 'INVALID_JSON');
    expect(nan.detail).toMatch(/"NaN"/);
    expectProblem(await call(app, '/v1/evaluate', '{"inputs": {"x": [Infinity]}}'), 'INVALID_JSON');
    const r = await app.inject({ method: 'POST', url: '/v1/grad' });
    expectProblem({ status: r.statusCode, body: r.json(), headers: r.headers }, 'INVALID_JSON');
  });

  it('INVALID_JSON: prototype poisoning keys', async () => {
    expectProblem(await call(app, '/v1/evaluate', '{"graph": {"nodes": []}, "inputs": {"__proto__": {"x": 1}}}'), 'INVALID_JSON');
  });

  it('INVALID_REQUEST: schema violations with paths into the body', async () => {
    const p = expectProblem(await call(app, '/v1/evaluate', {
      graph: { nodes: [{ name: 'a', op: 'neg', inputs: ['x'] }, { name: 'b', op: 'add', inputs: ['a', 7] }] }, inputs: {},
    }), 'INVALID_REQUEST');
    expect(p.errors).toContainEqual({ path: 'graph.nodes[1].inputs[1]', message: expect.any(String) });
    expect(p.detail).toContain('graph.nodes[1].inputs[1]');
    const q = expectProblem(await call(app, '/v1/grad', { graph: linearGraph, inputs: {} }), 'INVALID_REQUEST');
    expect(q.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['of', 'wrt']));
    expectProblem(await call(app, '/v1/evaluate', [1, 2]), 'INVALID_REQUEST');
    expectProblem(await call(app, '/v1/evaluate', { graph: linearGraph, inputs: {}, encoding: 'xml' }), 'INVALID_REQUEST');
    expectProblem(await call(app, '/v1/transform', { graph: linearGraph, transform: 'curl' }), 'INVALID_REQUEST');
  });

  it('INVALID_TENSOR: length vs shape, ragged nesting, bad base64, unknown datatype, unrepresentable value', async () => {
    const bad = async (x: unknown) => expectProblem(await call(app, '/v1/evaluate', { graph: linearGraph, inputs: { x, w: [[1, 2, 3], [4, 5, 6]] } }), 'INVALID_TENSOR');
    const a = await bad({ shape: [1, 2], datatype: 'FP32', data: [1, 2, 3] });
    expect(a.errors).toEqual([{ path: 'inputs.x.data', message: expect.stringContaining('[1, 2]') }]);
    expect(a.detail).toContain('inputs.x');
    expect((await bad({ shape: [2, 2], data: [[1, 2], [3]] })).detail).toMatch(/ragged/);
    expect((await bad({ shape: [1, 2], datatype: 'FP32', b64: '@@@@@@@@@@@' })).errors[0].path).toBe('inputs.x.b64');
    expect((await bad({ shape: [1, 2], datatype: 'FP16', data: [1, 2] })).detail).toContain('FP16');
    await bad({ shape: [1, 2], datatype: 'INT32', data: [1.5, 2] });
    await bad([[1, 2], [3]]);
  });

  it('UNKNOWN_OP, INVALID_ATTRS, UNKNOWN_VALUE, DUPLICATE_NAME, GRAPH_CYCLE from the engine, paths passed through', async () => {
    const x = { x: [1, 2] };
    const op = expectProblem(await call(app, '/v1/evaluate', { graph: g1([{ name: 'y', op: 'frobnicate', inputs: ['x'] }]), inputs: x }), 'UNKNOWN_OP');
    expect(op.errors[0].path).toBe('graph.nodes[0].op');
    expect(op.detail).toContain('frobnicate');
    expectProblem(await call(app, '/v1/evaluate', { graph: g1([{ name: 'y', op: 'clip', inputs: ['x'], attrs: { min: 2, max: 1 } }]), inputs: x }), 'INVALID_ATTRS');
    const uv = expectProblem(await call(app, '/v1/evaluate', { graph: g1([{ name: 'y', op: 'neg', inputs: ['nope'] }]), inputs: x }), 'UNKNOWN_VALUE');
    expect(uv.errors[0].path).toBe('graph.nodes[0].inputs[0]');
    expectProblem(await call(app, '/v1/grad', { graph: g1([{ name: 'y', op: 'sum', inputs: ['x'] }]), inputs: x, of: 'y', wrt: ['ghost'] }), 'UNKNOWN_VALUE');
    expectProblem(await call(app, '/v1/evaluate', { graph: g1([{ name: 'y', op: 'neg', inputs: ['x'] }, { name: 'y', op: 'exp', inputs: ['x'] }]), inputs: x }), 'DUPLICATE_NAME');
    const cyc = expectProblem(await call(app, '/v1/evaluate', { graph: g1([{ name: 'y', op: 'neg', inputs: ['z'] }, { name: 'z', op: 'neg', inputs: ['y'] }]), inputs: x }), 'GRAPH_CYCLE');
    expect(cyc.detail).toMatch(/y/);
    expect(cyc.detail).toMatch(/z/);
    expectProblem(await call(app, '/v1/evaluate', { graph: g1([{ name: 'y', op: 'neg', inputs: ['y'] }]), inputs: x }), 'GRAPH_CYCLE');
  });

  it('MISSING_INPUT, SHAPE_MISMATCH, DATATYPE_MISMATCH, NOT_SCALAR, NOT_DIFFERENTIABLE', async () => {
    const neg = g1([{ name: 'y', op: 'neg', inputs: ['x'] }]);
    expect(expectProblem(await call(app, '/v1/evaluate', { graph: neg, inputs: {} }), 'MISSING_INPUT').errors[0].path).toBe('inputs.x');
    const sm = expectProblem(await call(app, '/v1/evaluate', { graph: linearGraph, inputs: { x: [[1, 2, 3]], w: [[1, 2, 3], [4, 5, 6]] } }), 'SHAPE_MISMATCH');
    expect(sm.detail).toMatch(/\[1, 3\]/);
    expectProblem(await call(app, '/v1/vjp', { graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] }, cotangents: { y: [[1, 2]] }, wrt: ['x'] }), 'SHAPE_MISMATCH');
    expectProblem(await call(app, '/v1/evaluate', {
      graph: g1([{ name: 'y', op: 'add', inputs: ['x', 'i'] }], { x: { shape: [2] }, i: { shape: [2], datatype: 'INT32' } }), inputs: { x: [1, 2], i: [1, 2] },
    }), 'DATATYPE_MISMATCH');
    expectProblem(await call(app, '/v1/grad', { graph: neg, inputs: { x: [1, 2] }, of: 'y', wrt: ['x'] }), 'NOT_SCALAR');
    const nd = expectProblem(await call(app, '/v1/grad', {
      graph: g1([{ name: 'y', op: 'sum', inputs: ['i'] }], { i: { shape: [2], datatype: 'INT32' } }), inputs: { i: [1, 2] }, of: 'y', wrt: ['i'],
    }), 'NOT_DIFFERENTIABLE');
    expect(nd.detail).toMatch(/INT32/);
  });

  it('INDEX_OUT_OF_RANGE and INVALID_CAST found while running', async () => {
    expectProblem(await call(app, '/v1/evaluate', {
      graph: g1([{ name: 'y', op: 'gather', inputs: ['x', 'i'] }], { x: { shape: [2] }, i: { shape: [1], datatype: 'INT32' } }), inputs: { x: [1, 2], i: [5] },
    }), 'INDEX_OUT_OF_RANGE');
    expectProblem(await call(app, '/v1/evaluate', {
      graph: g1([{ name: 'y', op: 'cast', inputs: ['x'], attrs: { to: 'INT32' } }]), inputs: { x: ['NaN', 1] },
    }), 'INVALID_CAST');
  });

  it('TOO_LARGE: body, node count, tensor elements, estimated memory', async () => {
    const big = { graph: linearGraph, inputs: { x: { shape: [1, 20000], data: new Array(20000).fill(1.2345) } } };
    const body = expectProblem(await call(app, '/v1/evaluate', big), 'TOO_LARGE');
    expect(body.detail).toMatch(/64 KiB/);
    const nodes = Array.from({ length: 6 }, (_, i) => ({ name: `n${i}`, op: 'neg', inputs: [i === 0 ? 'x' : `n${i - 1}`] }));
    expect(expectProblem(await call(app, '/v1/evaluate', { graph: g1(nodes, undefined, ['n5']), inputs: { x: [1, 2] } }), 'TOO_LARGE').detail).toMatch(/6 nodes/);
    expect(expectProblem(await call(app, '/v1/shapes', { graph: g1(nodes, undefined, ['n5']) }), 'TOO_LARGE').detail).toMatch(/6 nodes/);
    const el = expectProblem(await call(app, '/v1/evaluate', { graph: linearGraph, inputs: { x: { shape: [1000, 1000], b64: 'AAAA' }, w: [[1, 2, 3], [4, 5, 6]] } }), 'TOO_LARGE');
    expect(el.errors[0].path).toBe('inputs.x.shape');
    // A shape bomb: one scalar broadcast to [1e9, 1e9] is refused before anything is allocated.
    const bomb = g1([{ name: 'y', op: 'broadcast_to', inputs: ['x'], attrs: { shape: [1e9, 1e9] } }], { x: { shape: [] } });
    expectProblem(await call(app, '/v1/evaluate', { graph: bomb, inputs: { x: 1 } }), 'TOO_LARGE');
  });

  it('TOO_LARGE: the per-request memory budget, checked from the cost estimate', async () => {
    const small = await makeApp({ requestMemoryBytes: 1024 });
    try {
      const g = g1([{ name: 'y', op: 'broadcast_to', inputs: ['x'], attrs: { shape: [100, 100] } }], { x: { shape: [] } });
      const p = expectProblem(await call(small, '/v1/evaluate', { graph: g, inputs: { x: 1 } }), 'TOO_LARGE');
      expect(p.detail).toMatch(/KiB|bytes|B\b/);
    } finally {
      await small.close();
    }
  });

  it('TOO_LARGE: a Jacobian over the budget names its size and vjp/jvp', async () => {
    // The seed-scale linear layer: J of y[64,4096] wrt x[64,4096] needs (64·4096)² · 4 B = 256 GiB.
    const zeros = (n: number) => b64(new Float32Array(n));
    const g = { inputs: { x: { shape: [64, 4096], datatype: 'FP32' }, w: { shape: [4096, 4096], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }], outputs: ['y'] };
    const roomy = await makeApp({ bodyLimitBytes: 256 * 1024 * 1024, maxTensorElements: 2 ** 28 });
    try {
      const p = expectProblem(await call(roomy, '/v1/jacobian', {
        graph: g, inputs: { x: { shape: [64, 4096], datatype: 'FP32', b64: zeros(64 * 4096) }, w: { shape: [4096, 4096], datatype: 'FP32', b64: zeros(4096 * 4096) } }, of: ['y'], wrt: ['x'],
      }), 'TOO_LARGE');
      expect(p.detail).toContain('256 GiB');
      expect(p.detail).toMatch(/vjp/);
      expect(p.detail).toMatch(/jvp/);
    } finally {
      await roomy.close();
    }
  }, 60_000);

  it('NOT_FOUND: unknown routes and models', async () => {
    expectProblem(await call(app, '/v1/nope'), 'NOT_FOUND');
    expectProblem(await call(app, '/v1/evaluat', { graph: linearGraph }), 'NOT_FOUND');
  });
});

describe('errors from limits and failures', () => {
  it('UNAUTHORIZED: missing or wrong key; health stays open', async () => {
    const app = await makeApp({ apiKeys: ['s3cret', 'other-key'] });
    try {
      expectProblem(await call(app, '/v1/ops'), 'UNAUTHORIZED');
      const wrong = await call(app, '/v1/ops', undefined, { authorization: 'Bearer s3cre' });
      expectProblem(wrong, 'UNAUTHORIZED');
      expect(wrong.headers['www-authenticate']).toMatch(/Bearer/);
      expectProblem(await call(app, '/metrics', undefined, { authorization: 'Basic czNjcmV0' }), 'UNAUTHORIZED');
      expect((await call(app, '/v1/ops', undefined, { authorization: 'Bearer s3cret' })).status).toBe(200);
      expect((await call(app, '/v1/ops', undefined, { authorization: 'Bearer other-key' })).status).toBe(200);
      expect((await call(app, '/v2/health/live')).status).toBe(200);
      expect((await call(app, '/v2/health/ready')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('INTERNAL: an unexpected engine failure is a 500 with the request id, and the server keeps serving', async () => {
    const app = await makeApp({ engine: await engineWith({ evaluate: async () => { throw new TypeError('boom'); } }) });
    try {
      const r = await call(app, '/v1/evaluate', { graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } });
      const p = expectProblem(r, 'INTERNAL');
      expect(p.detail).not.toContain('boom');
      expect(typeof r.headers['x-request-id']).toBe('string');
      expect((await call(app, '/v2/health/live')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('DEADLINE_EXCEEDED: a run past the time limit is cancelled through its signal', async () => {
    let seen: AbortSignal | undefined;
    const engine: Partial<Engine> = {
      evaluate: async (_g, _i, _o, opts) => {
        seen = opts?.signal;
        await sleepUnlessAborted(10_000, opts?.signal);
        return { outputs: {} };
      },
    };
    const app = await makeApp({ engine: await engineWith(engine), requestTimeoutMs: 100 });
    try {
      const p = expectProblem(await call(app, '/v1/evaluate', { graph: linearGraph, inputs: {} }), 'DEADLINE_EXCEEDED');
      expect(p.detail).toMatch(/100 ms/);
      expect(seen?.aborted).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('DEADLINE_EXCEEDED even when the engine ignores its signal', async () => {
    const app = await makeApp({ engine: await engineWith({ evaluate: () => new Promise(() => {}) }), requestTimeoutMs: 50 });
    try {
      expectProblem(await call(app, '/v1/evaluate', { graph: linearGraph, inputs: {} }), 'DEADLINE_EXCEEDED');
    } finally {
      await app.close();
    }
  });

  it('OVERLOADED: when the server-wide budget is taken, a request waits briefly, then gets 503 with Retry-After', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const engine: Partial<Engine> = {
      evaluate: async (_g, _i, _o, opts) => {
        await opts?.onPlan?.({ flops: 1, peakBytes: 600, totalBytes: 600 });
        await gate;
        return { outputs: {} };
      },
    };
    const app = await makeApp({ engine: await engineWith(engine), serverMemoryBytes: 1000, admissionWaitMs: 50 });
    try {
      const first = call(app, '/v1/evaluate', { graph: linearGraph, inputs: {} });
      await new Promise((r) => setTimeout(r, 20));
      expect(app.gradserve.admission.usedBytes).toBe(600);
      const second = await call(app, '/v1/evaluate', { graph: linearGraph, inputs: {} });
      const p = expectProblem(second, 'OVERLOADED');
      expect(second.headers['retry-after']).toBe('1');
      expect(p.detail).toMatch(/budget/);
      release();
      expect((await first).status).toBe(200);
      expect(app.gradserve.admission.usedBytes).toBe(0);
      // With the memory back, the same request is admitted.
      expect((await call(app, '/v1/evaluate', { graph: linearGraph, inputs: {} })).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('a waiting request is admitted when memory frees up within the wait', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let calls = 0;
    const engine: Partial<Engine> = {
      evaluate: async (_g, _i, _o, opts) => {
        const mine = ++calls;
        await opts?.onPlan?.({ flops: 1, peakBytes: 600, totalBytes: 600 });
        if (mine === 1) await gate;
        return { outputs: {} };
      },
    };
    const app = await makeApp({ engine: await engineWith(engine), serverMemoryBytes: 1000, admissionWaitMs: 5000 });
    try {
      const first = call(app, '/v1/evaluate', { graph: linearGraph, inputs: {} });
      await new Promise((r) => setTimeout(r, 20));
      const second = call(app, '/v1/evaluate', { graph: linearGraph, inputs: {} });
      await new Promise((r) => setTimeout(r, 20));
      expect(app.gradserve.admission.queued).toBe(1);
      release();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('schema strictness', () => {
  it('wants lists where API.md says [names]', async () => {
    const app = await makeApp();
    try {
      const r = await call(app, '/v1/grad', { graph: linearGraph, inputs: {}, of: 'y', wrt: 'x' });
      expect(expectProblem(r, 'INVALID_REQUEST').errors[0].path).toBe('wrt');
      const j = await call(app, '/v1/jacobian', { graph: linearGraph, inputs: {}, of: 'y', wrt: ['x'] });
      expect(expectProblem(j, 'INVALID_REQUEST').errors[0].path).toBe('of');
      const m = await call(app, '/v1/jacobian', { graph: linearGraph, inputs: {}, of: ['y'], wrt: ['x'], mode: 'sideways' });
      expect(expectProblem(m, 'INVALID_REQUEST').errors[0].path).toBe('mode');
    } finally {
      await app.close();
    }
  });
});
