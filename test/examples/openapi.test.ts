/**
 * The OpenAPI document the service publishes: valid OpenAPI 3.1 (checked by a maintained validator), covering every
 * endpoint of the wire contract, and agreeing with what gradserve/client actually sends and reads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GradserveClient, tensor, type GraphSpec } from '../../src/client/index.js';
import { startServer, type LiveServer } from './live-server.js';

type Schema = { type?: string; properties?: Record<string, unknown>; required?: string[]; anyOf?: Schema[]; oneOf?: Schema[] };
type Doc = { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> }; responses?: Record<string, { content?: Record<string, { schema: Schema }> }> }>> };

const GRAPH: GraphSpec = {
  inputs: { x: { shape: [null, 2], datatype: 'FP64' }, w: { shape: [2, 3], datatype: 'FP64' } },
  nodes: [
    { name: 'y', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'loss', op: 'sum', inputs: ['y'] },
  ],
  outputs: ['y'],
};

let server: LiveServer;
let dir: string;
let doc: Doc;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gradserve-openapi-'));
  writeFileSync(join(dir, 'linear.json'), JSON.stringify(GRAPH));
  server = await startServer({ modelRepository: dir });
  doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as Doc;
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Property names a body schema allows (object, or each branch of a union such as /v1/transform's). */
function branches(s: Schema): Schema[] {
  return s.anyOf ?? s.oneOf ?? [s];
}

describe('OpenAPI document (GET /openapi.json)', () => {
  it('validates against the OpenAPI 3.1 schema (@seriousme/openapi-schema-validator)', async () => {
    const v = new Validator();
    const res = await v.validate(doc);
    expect(res.errors ?? [], JSON.stringify(res.errors, null, 1)?.slice(0, 2000)).toEqual([]);
    expect(res.valid).toBe(true);
    expect(v.version).toBe('3.1');
  });

  it('lists every endpoint of the wire contract', () => {
    const want = [
      ['post', '/v1/evaluate'], ['post', '/v1/grad'], ['post', '/v1/vjp'], ['post', '/v1/jvp'], ['post', '/v1/jacobian'],
      ['post', '/v1/hvp'], ['post', '/v1/hessian'], ['post', '/v1/gradcheck'], ['post', '/v1/transform'], ['post', '/v1/shapes'], ['post', '/v1/render'],
      ['get', '/v1/ops'], ['get', '/v2/health/live'], ['get', '/v2/health/ready'], ['get', '/v2'], ['get', '/v2/models/{name}'],
      ['post', '/v2/models/{name}/infer'],
    ];
    for (const [method, path] of want) expect(doc.paths[path!]?.[method!], `${method} ${path}`).toBeDefined();
  });

  it('documents binary framing on every POST /v1 endpoint: content type, header, binary tensor form, framed answer', () => {
    type Op = { parameters?: { name: string; in: string }[]; requestBody: { content: Record<string, { schema: Record<string, unknown> }> }; responses: Record<string, { content?: Record<string, unknown>; headers?: Record<string, unknown> }> };
    const text = JSON.stringify(doc);
    for (const path of ['/v1/evaluate', '/v1/grad', '/v1/vjp', '/v1/jvp', '/v1/jacobian', '/v1/hvp', '/v1/hessian', '/v1/gradcheck', '/v1/transform', '/v1/shapes']) {
      const op = doc.paths[path]!.post as unknown as Op;
      expect(Object.keys(op.requestBody.content), path).toEqual(['application/json', 'application/octet-stream']);
      expect(op.parameters?.find((p) => p.name === 'Inference-Header-Content-Length')?.in, path).toBe('header');
      expect(Object.keys(op.responses['200']!.content ?? {}), path).toContain('application/octet-stream');
      expect(op.responses['200']!.headers, path).toHaveProperty('Inference-Header-Content-Length');
    }
    // The binary tensor object, in requests and in answers, and the encoding that asks for it.
    expect(text).toContain('"binary_data_size"');
    expect(text).toContain('"binary_data_offset"');
    const vjp = (doc.paths['/v1/vjp']!.post as unknown as Op).requestBody.content['application/json']!.schema as { properties: { encoding: { enum: string[] } } };
    expect(vjp.properties.encoding.enum).toEqual(['json', 'b64', 'binary']);
  });

  it('every request the client sends fits the documented body schema, and every answer it reads is documented', async () => {
    const calls: { method: string; path: string; body: Record<string, unknown> | undefined; status: number; answer: unknown }[] = [];
    const spy: typeof fetch = async (u, init) => {
      const res = await fetch(u, init);
      const path = new URL(String(u)).pathname;
      const text = await res.clone().text();
      let answer: unknown;
      try {
        answer = JSON.parse(text);
      } catch {
        answer = text;
      }
      calls.push({ method: (init?.method ?? 'GET').toLowerCase(), path, body: init?.body ? JSON.parse(String(init.body)) : undefined, status: res.status, answer });
      return res;
    };
    const gs = new GradserveClient({ baseUrl: server.url, fetch: spy });
    const inputs = { x: tensor(new Float64Array([1, 2]), [1, 2]), w: tensor(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]) };
    const attempts: Promise<unknown>[] = [
      gs.evaluate({ graph: GRAPH, inputs, outputs: ['y'] }),
      gs.grad({ graph: GRAPH, inputs, of: 'loss', wrt: ['x'] }),
      gs.vjp({ graph: GRAPH, inputs, cotangents: { y: tensor(new Float64Array(3), [1, 3]) }, wrt: ['x'] }),
      gs.jvp({ graph: GRAPH, inputs, tangents: { x: tensor(new Float64Array(2), [1, 2]) }, of: ['y'] }),
      gs.jacobian({ graph: GRAPH, inputs, of: ['y'], wrt: ['x'], mode: 'reverse' }),
      gs.hvp({ graph: GRAPH, inputs, of: 'loss', vectors: { x: tensor(new Float64Array(2), [1, 2]) } }),
      gs.hessian({ graph: GRAPH, inputs, of: 'loss', wrt: ['x'] }),
      gs.gradcheck({ graph: GRAPH, inputs, of: 'loss', wrt: ['x'], eps: 1e-6 }),
      gs.transform({ graph: GRAPH, transform: 'vjp', of: ['y'], wrt: ['x'] }),
      gs.shapes({ graph: GRAPH, inputs: { x: { shape: [4, 2], datatype: 'FP64' }, w: { shape: [2, 3], datatype: 'FP64' } } }),
      gs.render({ graph: GRAPH, transform: 'grad', of: 'loss', wrt: ['x'], parameters: ['w'] }),
      gs.ops(),
      gs.live(),
      gs.ready(),
      gs.serverMetadata(),
      gs.modelMetadata('linear'),
      gs.modelReady('linear'),
      gs.infer('linear', { inputs, outputs: ['y'] }),
    ];
    // Endpoints still being built may answer 500; the schemas are compared for every exchange that happened.
    await Promise.allSettled(attempts);
    expect(calls.length).toBe(attempts.length);

    for (const c of calls) {
      const templ = c.path.replace(/^\/v2\/models\/[^/]+/, '/v2/models/{name}');
      const op = doc.paths[templ]?.[c.method];
      expect(op, `${c.method} ${templ} is documented`).toBeDefined();
      if (c.body !== undefined) {
        const schema = op!.requestBody!.content['application/json']!.schema;
        const sent = Object.keys(c.body).filter((k) => c.body![k] !== undefined);
        const fits = branches(schema).some((b) => sent.every((k) => k in (b.properties ?? {})) && (b.required ?? []).every((k) => sent.includes(k)));
        expect(fits, `${c.method} ${templ}: client sends [${sent}], schema allows ${JSON.stringify(branches(schema).map((b) => [Object.keys(b.properties ?? {}), b.required]))}`).toBe(true);
      }
      const documented = op!.responses?.[String(c.status)]?.content?.['application/json']?.schema;
      if (c.status === 200 && documented?.properties !== undefined && c.answer !== null && typeof c.answer === 'object') {
        const got = Object.keys(c.answer);
        for (const k of got) expect(Object.keys(documented.properties), `${templ} answers "${k}"`).toContain(k);
        for (const k of documented.required ?? []) expect(got, `${templ} must answer "${k}"`).toContain(k);
      }
    }
  });
});
