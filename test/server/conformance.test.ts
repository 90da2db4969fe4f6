/**
 * Contract points of API.md and the Open Inference Protocol that a black-box audit of the HTTP service checks:
 * exact INT64 on the wire, hostile nesting, the OIP error surface, route matching before body parsing, the body
 * limit on a real socket and the element limit of /v1/shapes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { encodeTyped } from '../../src/client/codec.js';
import { makeApp } from './helpers.js';

type Res = { status: number; type: string; text: string; body: any };

async function req(app: GradserveApp, method: string, url: string, payload?: string, headers: Record<string, string> = {}): Promise<Res> {
  const r = await app.inject({ method: method as 'POST', url, headers, ...(payload === undefined ? {} : { payload }) });
  let body: any;
  try { body = r.json(); } catch { body = undefined; }
  return { status: r.statusCode, type: String(r.headers['content-type'] ?? ''), text: r.body, body };
}
const json = { 'content-type': 'application/json' };
const post = (app: GradserveApp, url: string, text: string) => req(app, 'POST', url, text, json);

const identity = (datatype?: string) => ({
  inputs: { x: datatype === undefined ? {} : { datatype } },
  nodes: [{ name: 'y', op: 'identity', inputs: ['x'] }],
  outputs: ['y'],
});

function expectProblem(r: Res, status: number, code: string): void {
  expect(r.status, r.text).toBe(status);
  expect(r.type).toMatch(/^application\/problem\+json/);
  expect(r.body.code).toBe(code);
}

let dir: string;
let app: GradserveApp;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'gradserve-conformance-'));
  writeFileSync(path.join(dir, 'lin.json'), JSON.stringify({
    inputs: { x: { shape: [2], datatype: 'FP32' } },
    constants: { w: { shape: [2], datatype: 'FP32', data: [2, 3] } },
    nodes: [{ name: 'y', op: 'mul', inputs: ['x', 'w'] }],
    outputs: ['y'],
  }));
  writeFileSync(path.join(dir, 'ids.json'), JSON.stringify(identity('INT64')));
  app = await makeApp({ modelRepository: dir, maxTensorElements: 1_000_000 });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('INT64 beyond ±(2^53 - 1) in JSON', () => {
  const graph = JSON.stringify(identity());
  it('refuses a JSON number that JSON.parse would round, naming the input and inputs.x.data', async () => {
    for (const v of ['9007199254740993', '-9007199254740993']) {
      const r = await post(app, '/v1/evaluate', `{"graph":${graph},"inputs":{"x":{"shape":[1],"datatype":"INT64","data":[${v}]}}}`);
      expectProblem(r, 400, 'INVALID_TENSOR');
      expect(r.body.errors[0].path).toBe('inputs.x.data');
      expect(r.body.detail).toContain('inputs.x');
    }
  });

  it('refuses it in a shorthand input declared INT64 and in a graph constant', async () => {
    const short = await post(app, '/v1/evaluate', `{"graph":${JSON.stringify(identity('INT64'))},"inputs":{"x":[9007199254740993]}}`);
    expectProblem(short, 400, 'INVALID_TENSOR');
    expect(short.body.errors[0].path).toBe('inputs.x');
    const g = `{"inputs":{},"constants":{"c":{"shape":[1],"datatype":"INT64","data":[9007199254740993]}},"nodes":[{"name":"y","op":"identity","inputs":["c"]}],"outputs":["y"]}`;
    const constant = await post(app, '/v1/evaluate', `{"graph":${g},"inputs":{}}`);
    expectProblem(constant, 400, 'INVALID_TENSOR');
    expect(constant.body.errors[0].path).toBe('graph.constants.c.data');
  });

  it('answers exact values: b64 for such a tensor on v1, decimal strings on OIP', async () => {
    const big = 2n ** 60n + 1n;
    const r = await post(app, '/v1/evaluate', `{"graph":${graph},"inputs":{"x":{"shape":[2],"datatype":"INT64","data":["${big}", 5]}},"encoding":"json"}`);
    expect(r.status, r.text).toBe(200);
    const y = r.body.outputs.y;
    expect(y.data).toBeUndefined();
    const bytes = Buffer.from(y.b64, 'base64');
    expect([bytes.readBigInt64LE(0), bytes.readBigInt64LE(8)]).toEqual([big, 5n]);
    const small = await post(app, '/v1/evaluate', `{"graph":${graph},"inputs":{"x":{"shape":[2],"datatype":"INT64","data":[9007199254740991, -3]}}}`);
    expect(small.body.outputs.y.data).toEqual([9007199254740991, -3]);

    const oip = await post(app, '/v2/models/ids/infer', `{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":["${big}", 5]}]}`);
    expect(oip.status, oip.text).toBe(200);
    expect(oip.body.outputs[0].data).toEqual([big.toString(), 5]);
  });
});

describe('INT64 from the TypeScript client', () => {
  it('sends ±2^53 as b64 (the server refuses it as a JSON number), and the value arrives exactly', async () => {
    const data = new BigInt64Array([2n ** 53n, -(2n ** 53n), 2n ** 53n - 1n]);
    const wire = encodeTyped([3], 'INT64', data, { b64Threshold: Infinity });
    expect(wire.b64).toBeDefined();
    const r = await post(app, '/v1/evaluate', JSON.stringify({ graph: identity(), inputs: { x: wire }, encoding: 'b64' }));
    expect(r.status, r.text).toBe(200);
    const bytes = Buffer.from(r.body.outputs.y.b64, 'base64');
    expect([0, 8, 16].map((o) => bytes.readBigInt64LE(o))).toEqual(Array.from(data));
    expect(encodeTyped([1], 'INT64', new BigInt64Array([2n ** 53n - 1n]), { b64Threshold: Infinity }).data).toEqual([2 ** 53 - 1]);
  });
});

describe('hostile nesting over HTTP', () => {
  it('is a 400 INVALID_TENSOR naming the tensor, never a 500', async () => {
    const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
    const graph = JSON.stringify(identity());
    for (const n of [100, 5000, 100_000]) {
      const explicit = await post(app, '/v1/evaluate', `{"graph":${graph},"inputs":{"x":{"shape":[1],"datatype":"FP32","data":${deep(n)}}}}`);
      expectProblem(explicit, 400, 'INVALID_TENSOR');
      expect(explicit.body.errors[0].path).toBe('inputs.x.data');
      const short = await post(app, '/v1/evaluate', `{"graph":${graph},"inputs":{"x":${deep(n)}}}`);
      expectProblem(short, 400, 'INVALID_TENSOR');
      expect(short.body.errors[0].path).toBe('inputs.x');
    }
    const ok = await post(app, '/v1/evaluate', `{"graph":${graph},"inputs":{"x":{"shape":[1,1],"data":[[7]]}}}`);
    expect(ok.body.outputs.y.data).toEqual([7]);
  });
});

describe('OIP error surface', () => {
  const isOipError = (r: Res, status: number) => {
    expect(r.status, r.text).toBe(status);
    expect(r.type).toMatch(/^application\/json/);
    expect(Object.keys(r.body)).toEqual(['error']);
    expect(typeof r.body.error).toBe('string');
  };
  const infer = (body: unknown, model = 'lin') => post(app, `/v2/models/${model}/infer`, JSON.stringify(body));
  const x = { name: 'x', shape: [2], datatype: 'FP32', data: [1, 2] };

  it('failed inference requests are 400 {"error"}: missing input, wrong shape or datatype, unknown output', async () => {
    isOipError(await infer({ inputs: [] }), 400);
    isOipError(await infer({ inputs: [{ ...x, shape: [3], data: [1, 2, 3] }] }), 400);
    isOipError(await infer({ inputs: [{ ...x, datatype: 'FP64' }] }), 400);
    const unknown = await infer({ inputs: [x], outputs: [{ name: 'nope' }] });
    isOipError(unknown, 400);
    expect(unknown.body.error).toContain('nope');
    const ok = await infer({ inputs: [x] });
    expect(ok.body.outputs[0].data).toEqual([2, 6]);
  });

  it('unknown routes and model versions are 404 {"error"}; version 1 exists', async () => {
    isOipError(await req(app, 'GET', '/v2/nope'), 404);
    isOipError(await req(app, 'POST', '/v2/models/lin/nope', '{}', json), 404);
    isOipError(await req(app, 'GET', '/v2/models/lin/versions/2'), 404);
    isOipError(await req(app, 'GET', '/v2/models/lin/versions/2/ready'), 404);
    isOipError(await post(app, '/v2/models/lin/versions/2/infer', JSON.stringify({ inputs: [x] })), 404);
    isOipError(await req(app, 'GET', '/v2/models/missing/versions/1'), 404);
    const v1 = await req(app, 'GET', '/v2/models/lin/versions/1');
    expect(v1.status).toBe(200);
    expect(v1.body.versions).toEqual(['1']);
    expect((await post(app, '/v2/models/lin/versions/1/infer', JSON.stringify({ inputs: [x] }))).body.model_version).toBe('1');
  });

  it('401 with API keys is {"error"} on /v2, a problem on /v1; health stays 200', async () => {
    const keyed = await makeApp({ modelRepository: dir, apiKeys: ['k1'] });
    try {
      const r = await req(keyed, 'GET', '/v2/models/lin');
      isOipError(r, 401);
      expect((await req(keyed, 'GET', '/v2/models/lin', undefined, { authorization: 'Bearer k1' })).status).toBe(200);
      expectProblem(await req(keyed, 'GET', '/v1/ops'), 401, 'UNAUTHORIZED');
      expect((await req(keyed, 'GET', '/v2/health/live')).status).toBe(200);
      expect((await req(keyed, 'GET', '/v2/health/ready')).status).toBe(200);
    } finally {
      await keyed.close();
    }
  });
});

describe('route matching before body parsing', () => {
  it('unknown routes are 404 whatever the body', async () => {
    expectProblem(await req(app, 'DELETE', '/v1/ops', '', json), 404, 'NOT_FOUND');
    expectProblem(await req(app, 'DELETE', '/v1/ops'), 404, 'NOT_FOUND');
    expectProblem(await req(app, 'POST', '/v1/ops', '', json), 404, 'NOT_FOUND');
    expectProblem(await req(app, 'DELETE', '/v1/nope', '', json), 404, 'NOT_FOUND');
    expectProblem(await req(app, 'POST', '/v1/nope', '{bad', json), 404, 'NOT_FOUND');
    expectProblem(await req(app, 'PUT', '/v1/evaluate', 'NaN', json), 404, 'NOT_FOUND');
  });

  it('an empty or broken body on a real POST route stays 400 INVALID_JSON', async () => {
    expectProblem(await req(app, 'POST', '/v1/evaluate', '', json), 400, 'INVALID_JSON');
    expectProblem(await req(app, 'POST', '/v1/evaluate'), 400, 'INVALID_JSON');
    expectProblem(await req(app, 'POST', '/v1/evaluate', '{bad', json), 400, 'INVALID_JSON');
  });
});

describe('/v1/shapes limits', () => {
  it('refuses a declared input over the element limit with 413', async () => {
    const r = await post(app, '/v1/shapes', JSON.stringify({ graph: identity(), inputs: { x: { shape: [1e9, 1e9], datatype: 'FP32' } } }));
    expectProblem(r, 413, 'TOO_LARGE');
    expect(r.body.errors[0].path).toBe('inputs.x.shape');
    expect(r.body.detail).toContain('GRADSERVE_MAX_TENSOR_ELEMENTS');
    const ok = await post(app, '/v1/shapes', JSON.stringify({ graph: identity(), inputs: { x: { shape: [1000, 1000], datatype: 'FP32' } } }));
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.values.y.shape).toEqual([1000, 1000]);
  });

  it('holds every inferred value to the element limit, as evaluate would', async () => {
    const graph = { inputs: { a: { datatype: 'FP32' }, b: { datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'add', inputs: ['a', 'b'] }], outputs: ['y'] };
    const r = await post(app, '/v1/shapes', JSON.stringify({ graph, inputs: { a: { shape: [2000, 1] }, b: { shape: [1, 2000] } } }));
    expectProblem(r, 413, 'TOO_LARGE');
    expect(r.body.errors[0].path).toBe('graph.nodes[0]');
    expect(r.body.detail).toContain('[2000, 2000]');
    const ok = await post(app, '/v1/shapes', JSON.stringify({ graph, inputs: { a: { shape: [500, 1] }, b: { shape: [1, 500] } } }));
    expect(ok.body.values.y.shape).toEqual([500, 500]);
  });
});

describe('body limit on a real socket', () => {
  it('answers 413 to a Content-Length over the limit before any of the body is sent', async () => {
    const small = await makeApp({ bodyLimitBytes: 1024 });
    try {
      await small.listen({ host: '127.0.0.1', port: 0 });
      const port = (small.server.address() as net.AddressInfo).port;
      const head = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write(`POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
        });
        let got = '';
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (got.includes('\r\n\r\n')) { s.destroy(); resolve(got); }
        });
        s.on('error', reject);
        setTimeout(() => { s.destroy(); reject(new Error(`no answer before the body was sent: ${JSON.stringify(got)}`)); }, 5000);
      });
      expect(head).toMatch(/^HTTP\/1\.1 413 /);
    } finally {
      await small.close();
    }
  });

  it('lets a client that writes its whole body first (up to twice the limit) read the 413, then reuse the connection', async () => {
    const limit = 64 * 1024;
    const small = await makeApp({ bodyLimitBytes: limit });
    try {
      await small.listen({ host: '127.0.0.1', port: 0 });
      const port = (small.server.address() as net.AddressInfo).port;
      const total = 2 * limit;
      const answer = await new Promise<string>((resolve, reject) => {
        let got = '';
        const s = net.connect(port, '127.0.0.1', async () => {
          s.write(`POST /v1/evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
          for (let sent = 0; sent < total; sent += 4096) {
            if (!s.write(Buffer.alloc(4096, 0x20))) await new Promise((r) => s.once('drain', r));
          }
          s.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n');
        });
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (got.includes('{"live":true}')) { s.destroy(); resolve(got); }
        });
        s.on('error', (e) => reject(new Error(`${e.message} after ${JSON.stringify(got)}`)));
        setTimeout(() => { s.destroy(); reject(new Error(`incomplete: ${JSON.stringify(got)}`)); }, 5000);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer).toContain('"code":"TOO_LARGE"');
      expect(answer).toMatch(/HTTP\/1\.1 200 OK/);
    } finally {
      await small.close();
    }
  });
});
