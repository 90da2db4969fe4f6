/**
 * Batched derivatives over HTTP (API.md "Batched derivatives"): `"batched": true` on /v1/vjp, /v1/jvp, /v1/hvp and
 * `"per_example"` on /v1/grad answer what the loop of single requests answers, in JSON, b64 and binary framing, with
 * the `Gradserve-Batching` header; then the error bodies of the validation cases and the memory refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { asB64, frame, normalize, postFramed, t, unframe } from './framing-support.js';
import { engineWith, makeApp } from './helpers.js';

let app: GradserveApp;
beforeAll(async () => {
  app = await makeApp();
});
afterAll(async () => {
  await app.close();
});

const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object });

/** tanh(x·w + b) with a mean cross entropy over the rows, FP64. */
const mlp = {
  inputs: {
    x: { shape: [null, 3], datatype: 'FP64' }, labels: { shape: [null], datatype: 'INT64' },
    w: { shape: [3, 2], datatype: 'FP64' }, b: { shape: [2], datatype: 'FP64' },
  },
  nodes: [
    { name: 'h', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'hb', op: 'add', inputs: ['h', 'b'] },
    { name: 'y', op: 'tanh', inputs: ['hb'] },
    { name: 'loss', op: 'softmax_cross_entropy', inputs: ['y', 'labels'] },
  ],
  outputs: ['y', 'loss'],
};
const X = [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [-0.7, 0.8, 0.9], [1.0, -1.1, 0.2]];
const inputs = { x: X, labels: { shape: [4], datatype: 'INT64', data: [0, 1, 1, 0] }, w: [[0.3, -0.1], [0.2, 0.5], [-0.4, 0.6]], b: [0.05, -0.05] };
const COT = [[[1, 0], [0, 1], [1, 1], [0, 0]], [[0.5, -1], [2, 0], [0, 0], [1, -1]], [[0, 0], [0, 0], [0, 0], [0, 0]]];

interface Answer { outputs: Record<string, { shape: number[]; data: number[] }>; [k: string]: Record<string, { shape: number[]; data: number[] }> }

function stackedData(parts: { data: number[] }[]): number[] {
  return parts.flatMap((p) => p.data);
}

function expectNumbers(actual: number[], expected: number[], tol = 1e-12): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!), `element ${i}`).toBeLessThanOrEqual(tol * (1 + Math.abs(expected[i]!))));
}

describe('batched requests answer what the loop of single requests answers', () => {
  it('/v1/vjp', async () => {
    const res = await post('/v1/vjp', { graph: mlp, inputs, cotangents: { y: COT }, wrt: ['w', 'b', 'x'], batched: true });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['gradserve-batching']).toBe('vectorized; size=3; chunk=3; passes=1');
    const body = res.json() as Answer;
    const singles = await Promise.all(COT.map(async (c) => (await post('/v1/vjp', { graph: mlp, inputs, cotangents: { y: c }, wrt: ['w', 'b', 'x'] })).json() as Answer));
    for (const w of ['w', 'b', 'x']) {
      expect(body.gradients[w]!.shape).toEqual([3, ...singles[0]!.gradients[w]!.shape]);
      expectNumbers(body.gradients[w]!.data, stackedData(singles.map((s) => s.gradients[w]!)));
    }
    expect(body.outputs).toEqual(singles[0]!.outputs);
  });

  it('/v1/jvp', async () => {
    const tangents = { w: [[[1, 0], [0, 0], [0, 0]], [[0, 0], [0, 1], [0, 0]]] };
    const res = await post('/v1/jvp', { graph: mlp, inputs, tangents, batched: true });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['gradserve-batching']).toMatch(/^vectorized; size=2/);
    const body = res.json() as Answer;
    const singles = await Promise.all(tangents.w.map(async (tw) => (await post('/v1/jvp', { graph: mlp, inputs, tangents: { w: tw } })).json() as Answer));
    for (const o of ['y', 'loss']) expectNumbers(body.tangents[o]!.data, stackedData(singles.map((s) => s.tangents[o]!)));
    expect(body.tangents.loss!.shape).toEqual([2]);
  });

  it('/v1/hvp: hvp batched, gradients plain', async () => {
    const vectors = { w: [[[1, 0], [0, 0], [0, 0]], [[0.5, 0.5], [1, -1], [0, 2]], [[0, 0], [0, 0], [0, 0]], [[0, 0], [0, 0], [1, 0]]] };
    const res = await post('/v1/hvp', { graph: mlp, inputs, of: 'loss', vectors, batched: true });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as Answer;
    const singles = await Promise.all(vectors.w.map(async (v) => (await post('/v1/hvp', { graph: mlp, inputs, of: 'loss', vectors: { w: v } })).json() as Answer));
    expect(body.hvp.w!.shape).toEqual([4, 3, 2]);
    expectNumbers(body.hvp.w!.data, stackedData(singles.map((s) => s.hvp.w!)), 1e-10);
    expect(body.gradients.w!.shape).toEqual([3, 2]);
    expectNumbers(body.gradients.w!.data, singles[0]!.gradients.w!.data);
  });

  it('/v1/grad with per_example: one gradient per row, each the gradient of that row alone', async () => {
    const res = await post('/v1/grad', { graph: mlp, inputs, of: 'loss', wrt: ['w', 'x'], per_example: { axis: 0, inputs: ['x', 'labels'] } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['gradserve-batching']).toBe('vectorized; size=4; chunk=4; passes=1');
    const body = res.json() as Answer;
    expect(body.gradients.w!.shape).toEqual([4, 3, 2]);
    expect(body.gradients.x!.shape).toEqual([4, 3]);
    const whole = (await post('/v1/grad', { graph: mlp, inputs, of: 'loss', wrt: ['w'] })).json() as Answer;
    expectNumbers(body.outputs.loss!.data, whole.outputs.loss!.data);
    const rows = await Promise.all(X.map(async (row, i) => (await post('/v1/grad', {
      graph: mlp, inputs: { ...inputs, x: [row], labels: { shape: [1], datatype: 'INT64', data: [inputs.labels.data[i]] } }, of: 'loss', wrt: ['w', 'x'],
    })).json() as Answer));
    expectNumbers(body.gradients.w!.data, stackedData(rows.map((r) => r.gradients.w!)));
    expectNumbers(body.gradients.x!.data, stackedData(rows.map((r) => r.gradients.x!)));
    // the mean of the per-example gradients is the batch gradient (a mean loss)
    const mean = [0, 1, 2, 3, 4, 5].map((k) => rows.reduce((s, r) => s + r.gradients.w!.data[k]! / 4, 0));
    expectNumbers(mean, whole.gradients.w!.data);
  });

  it('binary framing and b64 answer the same bytes', async () => {
    const f64 = (rows: number[][][]) => new Float64Array(rows.flat(2));
    const body = {
      graph: mlp,
      inputs: { x: t('FP64', [4, 3], new Float64Array(X.flat())), labels: t('INT64', [4], new BigInt64Array([0n, 1n, 1n, 0n])), w: t('FP64', [3, 2], new Float64Array([0.3, -0.1, 0.2, 0.5, -0.4, 0.6])), b: t('FP64', [2], new Float64Array([0.05, -0.05])) },
      cotangents: { y: t('FP64', [3, 4, 2], f64(COT)) },
      wrt: ['w', 'x'],
      batched: true,
    };
    const { payload, headerLength } = frame({ ...body, encoding: 'binary' });
    const framed = unframe(await postFramed(app, '/v1/vjp', payload, headerLength));
    const b64 = await post('/v1/vjp', { ...(asB64(body) as object), encoding: 'b64' });
    expect(b64.statusCode, b64.body).toBe(200);
    expect(normalize(framed.json, framed.section)).toEqual(normalize(b64.json()));
  });

  it('B = 0', async () => {
    const res = await post('/v1/vjp', { graph: mlp, inputs, cotangents: { y: { shape: [0, 4, 2], datatype: 'FP64', data: [] } }, wrt: ['w'], batched: true });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ gradients: { w: { shape: [0, 3, 2], data: [] } }, outputs: { y: { shape: [4, 2] } } });
  });
});

describe('any value name', () => {
  it('constructor and valueOf as value names: batched vjp and per-example gradients keep their entries', async () => {
    const graph = {
      inputs: { valueOf: { shape: [null, 2], datatype: 'FP64' }, constructor: { shape: [2, 3], datatype: 'FP64' } },
      nodes: [{ name: 'toString', op: 'matmul', inputs: ['valueOf', 'constructor'] }, { name: 'loss', op: 'sum', inputs: ['toString'] }],
      outputs: ['toString'],
    };
    const ins = { valueOf: [[1, 2], [3, 4]], constructor: [[1, 2, 3], [4, 5, 6]] };
    const vjp = await post('/v1/vjp', { graph, inputs: ins, cotangents: { toString: [[[1, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]]] }, wrt: ['valueOf', 'constructor'], batched: true });
    expect(vjp.statusCode, vjp.body).toBe(200);
    const v = vjp.json() as { outputs: Record<string, unknown>; gradients: Record<string, { shape: number[]; data: number[] }> };
    expect(Object.keys(v.gradients).sort()).toEqual(['constructor', 'valueOf']);
    expect(Object.keys(v.outputs)).toEqual(['toString']);
    expect(v.gradients['constructor']!.shape).toEqual([2, 2, 3]);
    const pe = await post('/v1/grad', { graph, inputs: ins, of: 'loss', wrt: ['constructor', 'valueOf'], per_example: { axis: 0, inputs: ['valueOf'] } });
    expect(pe.statusCode, pe.body).toBe(200);
    const g = pe.json() as { outputs: Record<string, unknown>; gradients: Record<string, { shape: number[]; data: number[] }> };
    expect(Object.keys(g.gradients).sort()).toEqual(['constructor', 'valueOf']);
    expect(Object.keys(g.outputs).sort()).toEqual(['loss', 'toString']);
    expect(g.gradients['constructor']).toMatchObject({ shape: [2, 2, 3], data: [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4] });
    const h = await post('/v1/hvp', { graph, inputs: ins, of: 'loss', vectors: { constructor: [[[1, 0, 0], [0, 0, 0]]] }, batched: true });
    expect(h.statusCode, h.body).toBe(200);
    expect(Object.keys((h.json() as { hvp: object }).hvp)).toEqual(['constructor']);
  });
});

describe('error bodies', () => {
  const problem = async (url: string, payload: unknown, status: number, code: string) => {
    const res = await post(url, payload);
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json() as { code: string; detail: string; errors?: { path: string; message: string }[] };
    expect(body.code).toBe(code);
    return body;
  };

  it('leading axes that disagree: 422 SHAPE_MISMATCH naming the tensors and sizes', async () => {
    const g2 = { ...mlp, outputs: ['y', 'h'] };
    const body = await problem('/v1/vjp', { graph: g2, inputs, cotangents: { y: COT, h: COT.slice(0, 2) }, wrt: ['w'], batched: true }, 422, 'SHAPE_MISMATCH');
    expect(body.detail).toContain('cotangents.y has 3 on its leading (batch) axis but cotangents.h has 2');
    expect(body.errors).toEqual([{ path: 'cotangents.h', message: body.detail }]);
    const v = await problem('/v1/hvp', { graph: mlp, inputs, of: 'loss', vectors: { w: [[[1, 0], [0, 0], [0, 0]]], b: [[1, 0], [0, 1]] }, batched: true }, 422, 'SHAPE_MISMATCH');
    expect(v.detail).toContain('vectors.w has 1');
    expect(v.detail).toContain('vectors.b has 2');
  });

  it('a cotangent without the batch axis: 422 SHAPE_MISMATCH with the expected shape', async () => {
    const body = await problem('/v1/vjp', { graph: mlp, inputs, cotangents: { y: COT[0] }, wrt: ['w'], batched: true }, 422, 'SHAPE_MISMATCH');
    expect(body.detail).toContain('[B, ...[4, 2]] = [4, 4, 2], got [4, 2]');
  });

  it('per_example: an unknown name is 422 UNKNOWN_VALUE, sizes that disagree 422 SHAPE_MISMATCH', async () => {
    const u = await problem('/v1/grad', { graph: mlp, inputs, of: 'loss', wrt: ['w'], per_example: { axis: 0, inputs: ['x', 'nope'] } }, 422, 'UNKNOWN_VALUE');
    expect(u.errors![0]!.path).toBe('per_example.inputs[1]');
    expect(u.detail).toContain('"nope"');
    const s = await problem('/v1/grad', { graph: mlp, inputs, of: 'loss', wrt: ['w'], per_example: { axis: 0, inputs: ['x', 'b'] } }, 422, 'SHAPE_MISMATCH');
    expect(s.detail).toContain('inputs.x has 4 examples along axis 0 but inputs.b [2] has 2');
    expect(s.errors![0]!.path).toBe('per_example.inputs[1]');
  });

  it('schema violations are 400 INVALID_REQUEST', async () => {
    await problem('/v1/grad', { graph: mlp, inputs, of: 'loss', wrt: ['w'], per_example: { axis: 0, inputs: [] } }, 400, 'INVALID_REQUEST');
    await problem('/v1/grad', { graph: mlp, inputs, of: 'loss', wrt: ['w'], per_example: { inputs: ['x'] } }, 400, 'INVALID_REQUEST');
    await problem('/v1/vjp', { graph: mlp, inputs, cotangents: { y: COT }, wrt: ['w'], batched: 'yes' }, 400, 'INVALID_REQUEST');
  });
});

describe('Gradserve-Batching', () => {
  it('says when a batch ran as a loop, and why', async () => {
    const engine = await engineWith({
      vjp: async () => ({ outputs: {}, gradients: {}, batching: { size: 2, vectorized: false, chunk: 1, passes: 2, reason: 'no batching rule for op "conv" (node "c")' } }),
    });
    const looping = await makeApp({ engine });
    try {
      const res = await looping.inject({ method: 'POST', url: '/v1/vjp', payload: { graph: mlp, inputs, cotangents: { y: COT }, wrt: ['w'], batched: true } });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['gradserve-batching']).toBe('loop; size=2; chunk=1; passes=2; reason="no batching rule for op \\"conv\\" (node \\"c\\")"');
    } finally {
      await looping.close();
    }
  });

  it('is absent from unbatched answers', async () => {
    const res = await post('/v1/vjp', { graph: mlp, inputs, cotangents: { y: COT[0] }, wrt: ['w'] });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['gradserve-batching']).toBeUndefined();
  });
});

describe('memory', () => {
  it('an answer over the response limit is 413 before anything runs, the batch axis counted', async () => {
    const small = await makeApp({ responseLimitBytes: 64 * 1024 });
    try {
      const cot = Array.from({ length: 600 }, (_, k) => COT[k % 3]);
      const payload = { graph: mlp, inputs, cotangents: { y: cot }, wrt: ['x'], batched: true };
      const res = await small.inject({ method: 'POST', url: '/v1/vjp', payload });
      expect(res.statusCode, res.body).toBe(413);
      expect(res.json()).toMatchObject({ code: 'TOO_LARGE', detail: expect.stringContaining('"encoding": "binary"') });
      const binary = await small.inject({ method: 'POST', url: '/v1/vjp', payload: { ...payload, encoding: 'binary' } });
      expect(binary.statusCode).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('413 TOO_LARGE before running, with the bytes needed and the largest batch that fits', async () => {
    const small = await makeApp({ requestMemoryBytes: 8192 });
    try {
      const cot = Array.from({ length: 200 }, (_, k) => COT[k % 3]);
      const res = await small.inject({ method: 'POST', url: '/v1/vjp', payload: { graph: mlp, inputs, cotangents: { y: cot }, wrt: ['w', 'x'], batched: true } });
      expect(res.statusCode, res.body).toBe(413);
      const body = res.json() as { code: string; detail: string };
      expect(body.code).toBe('TOO_LARGE');
      expect(body.detail).toMatch(/^batched vjp of B = 200 needs [\d.]+ KiB \(\d+ bytes: .*over the memory budget of 8 KiB; the largest batch that fits is B = \d+$/);
      const largest = Number(/B = (\d+)$/.exec(body.detail)![1]);
      const ok = await small.inject({ method: 'POST', url: '/v1/vjp', payload: { graph: mlp, inputs, cotangents: { y: cot.slice(0, largest) }, wrt: ['w', 'x'], batched: true } });
      expect(ok.statusCode, ok.body).toBe(200);
    } finally {
      await small.close();
    }
  });
});
