/**
 * Any value name round-trips: a value named `__proto__`, `constructor`, `toString` or `hasOwnProperty` comes back
 * under its own name in every response map (outputs, gradients, tangents, jacobians, hvp, hessians, perInput), in
 * every encoding, and from /v2 infer. On an ordinary object `out["__proto__"] = t` sets the prototype and the entry
 * disappears; `inputs["constructor"]` finds Object's constructor.
 *
 * Requests may not carry `__proto__` as a key (INVALID_JSON, prototype poisoning), so that name is a node here; the
 * other names are also used as input, cotangent, tangent and vector keys.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { closeTo, makeApp } from './helpers.js';

const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
const ENCODINGS = ['json', 'b64', 'binary'] as const;

let app: GradserveApp;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gradserve-names-'));
  app = await makeApp({ modelRepository: dir });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A graph with a node named `name`: y = sin(a) under that name, loss = sum of it. */
const nodeNamed = (name: string) => ({
  inputs: { a: { shape: [2], datatype: 'FP64' } },
  nodes: [{ name, op: 'sin', inputs: ['a'] }, { name: 'loss', op: 'sum', inputs: [name] }],
  outputs: [name, 'loss'],
});

/** A graph with an input named `name`. */
const inputNamed = (name: string) => ({
  inputs: { [name]: { shape: [2], datatype: 'FP64' } },
  nodes: [{ name: 'y', op: 'sin', inputs: [name] }, { name: 'loss', op: 'sum', inputs: ['y'] }],
  outputs: ['y', 'loss'],
});

/** The response's JSON (the header of a framed answer), as parsed by JSON.parse: `__proto__` stays an own key. */
async function post(url: string, body: Record<string, unknown>): Promise<{ status: number; json: any }> {
  const res = await app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const header = res.headers['inference-header-content-length'];
  const text = header === undefined ? res.body : res.rawPayload.subarray(0, Number(header)).toString('utf8');
  return { status: res.statusCode, json: JSON.parse(text) };
}

function keys(m: unknown): string[] {
  return Object.keys(m as object);
}

const SIN = [Math.sin(1), Math.sin(2)];

describe.each(ENCODINGS)('value names round-trip (%s)', (encoding) => {
  it.each(NAMES)('a node named %s', async (name) => {
    const graph = nodeNamed(name);
    const a = [1, 2];
    const ev = await post('/v1/evaluate', { graph, inputs: { a }, encoding });
    expect(ev.status).toBe(200);
    expect(keys(ev.json.outputs)).toEqual([name, 'loss']);
    if (encoding === 'json') closeTo(ev.json.outputs[name].data, SIN);

    const g = await post('/v1/grad', { graph, inputs: { a }, of: 'loss', wrt: ['a', name], encoding });
    expect(g.status).toBe(200);
    expect(keys(g.json.outputs)).toEqual([name, 'loss']);
    expect(keys(g.json.gradients)).toEqual(['a', name]);
    if (encoding === 'json') expect(g.json.gradients[name].data).toEqual([1, 1]);

    const v = await post('/v1/vjp', { graph, inputs: { a }, cotangents: { loss: 1 }, wrt: [name], encoding });
    expect(keys(v.json.gradients)).toEqual([name]);

    const j = await post('/v1/jvp', { graph, inputs: { a }, tangents: { a: [1, 0] }, of: [name], encoding });
    expect(keys(j.json.tangents)).toEqual([name]);

    const jac = await post('/v1/jacobian', { graph, inputs: { a }, of: [name, 'loss'], wrt: ['a', name], encoding });
    expect(jac.status).toBe(200);
    expect(keys(jac.json.jacobians)).toEqual([name, 'loss']);
    expect(keys(jac.json.jacobians[name])).toEqual(['a', name]);

    const h = await post('/v1/hessian', { graph, inputs: { a }, of: 'loss', wrt: ['a'], encoding });
    expect(h.status, JSON.stringify(h.json)).toBe(200);
    expect(keys(h.json.outputs)).toEqual([name, 'loss']);

    const sh = await post('/v1/shapes', { graph, inputs: { a: { shape: [2], datatype: 'FP64' } } });
    expect(keys(sh.json.values)).toContain(name);
  });

  it.each(NAMES.filter((n) => n !== '__proto__'))('an input named %s, given as a key everywhere', async (name) => {
    const graph = inputNamed(name);
    const x = [1, 2];
    const g = await post('/v1/grad', { graph, inputs: { [name]: x }, of: 'loss', wrt: [name], encoding });
    expect(g.status).toBe(200);
    expect(keys(g.json.gradients)).toEqual([name]);
    // a cotangent keyed by a node named like a prototype property, taking the node's datatype (FP64)
    const v = await post('/v1/vjp', { graph: nodeNamed(name), inputs: { a: x }, cotangents: { [name]: [1, 1] }, wrt: ['a'], encoding });
    expect(v.status, JSON.stringify(v.json)).toBe(200);
    const t = await post('/v1/jvp', { graph, inputs: { [name]: x }, tangents: { [name]: [1, 0] }, encoding });
    expect(t.status).toBe(200);
    const h = await post('/v1/hvp', { graph, inputs: { [name]: x }, of: 'loss', vectors: { [name]: [1, 0] }, encoding });
    expect(h.status).toBe(200);
    expect(keys(h.json.hvp)).toEqual([name]);
    const hs = await post('/v1/hessian', { graph, inputs: { [name]: x }, of: 'loss', wrt: [name], encoding });
    expect(keys(hs.json.hessians)).toEqual([name]);
    expect(keys(hs.json.hessians[name])).toEqual([name]);
    const gc = await post('/v1/gradcheck', { graph, inputs: { [name]: x }, of: 'loss', wrt: [name] });
    expect(keys(gc.json.perInput)).toEqual([name]);
  });
});

describe('value names round-trip through /v2 infer', () => {
  it.each(NAMES)('a node named %s as an output and as grad:<name>', async (name) => {
    writeFileSync(join(dir, 'named.json'), JSON.stringify(nodeNamed(name)));
    for (const binary of [false, true]) {
      const res = await post('/v2/models/named/infer', {
        inputs: [{ name: 'a', shape: [2], datatype: 'FP64', data: [1, 2] }],
        outputs: [{ name }, { name: `grad:${name}`, parameters: { of: 'loss' } }],
        ...(binary ? { parameters: { binary_data_output: true } } : {}),
      });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.json.outputs.map((o: { name: string }) => o.name)).toEqual([name, `grad:${name}`]);
      if (!binary) closeTo(res.json.outputs[0].data, SIN);
    }
  });
});
