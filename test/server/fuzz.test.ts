/**
 * A bounded property-based fuzz test of the HTTP surface through `app.inject`: valid requests for every endpoint,
 * mutated (values replaced by odd ones, keys dropped or added, names swapped, ops changed, tensors put where shapes
 * belong), as JSON and in binary framing (bits flipped in the header length, the sizes, the offsets and the JSON part;
 * bodies cut short or padded), on /v1 and /v2. Every answer must be below 500; every 4xx on /v1 a problem+json body
 * with a catalogue code and a matching status; and after each batch a known-good request is still answered
 * correctly. Sized (numRuns) to stay well under a minute on a loaded two-core machine.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../src/errors.js';
import { ALL_OPS } from '../../src/ops/registry.js';
import type { GradserveApp } from '../../src/server/app.js';
import { closeTo, linearGraph, makeApp, matmul, transpose } from './helpers.js';

/** Runs per batch; there are BATCHES batches per property (a known-good request after each). */
const RUNS = 400;
const BATCHES = 3;
const SEED = 18_2026;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const mlp: Json = {
  inputs: { x: { shape: [null, 3], datatype: 'FP32' }, w: { shape: [3, 2], datatype: 'FP32' }, b: { shape: [2], datatype: 'FP32' } },
  constants: { two: { shape: [], datatype: 'FP32', data: [2] } },
  nodes: [
    { name: 'h', op: 'matmul', inputs: ['x', 'w'] },
    { name: 'z', op: 'add', inputs: ['h', 'b'] },
    { name: 'a', op: 'tanh', inputs: ['z'] },
    { name: 'a2', op: 'mul', inputs: ['a', 'two'] },
    { name: 'loss', op: 'sum', inputs: ['a2'], attrs: { axes: null, keepdims: false } },
  ],
  outputs: ['a', 'loss'],
};
const inputs = { x: [[0.1, -0.2, 0.3], [0.5, 0.4, -0.6]], w: { shape: [3, 2], datatype: 'FP32', data: [1, 2, 3, -1, 0.5, 0] }, b: [0.1, -0.1] };

/** One valid request per endpoint (the fuzzer mutates these). */
const SEEDS: { url: string; body: Json }[] = [
  { url: '/v1/evaluate', body: { graph: mlp, inputs, outputs: ['a', 'loss'] } },
  { url: '/v1/grad', body: { graph: mlp, inputs, of: 'loss', wrt: ['w', 'b', 'z'] } },
  { url: '/v1/vjp', body: { graph: mlp, inputs, cotangents: { a: [[1, 0], [0, 1]] }, wrt: ['x', 'w'] } },
  { url: '/v1/jvp', body: { graph: mlp, inputs, tangents: { w: { shape: [3, 2], data: [1, 0, 0, 0, 0, 1] } }, of: ['a'] } },
  { url: '/v1/jacobian', body: { graph: mlp, inputs, of: ['a'], wrt: ['b'], mode: 'auto' } },
  { url: '/v1/hvp', body: { graph: mlp, inputs, of: 'loss', vectors: { b: [1, 0] } } },
  { url: '/v1/hessian', body: { graph: mlp, inputs, of: 'loss', wrt: ['b'] } },
  { url: '/v1/gradcheck', body: { graph: mlp, inputs, of: 'loss', wrt: ['b'], eps: 1e-3, atol: 1e-2 } },
  { url: '/v1/transform', body: { graph: mlp, transform: 'vjp', of: ['loss'], wrt: ['w'] } },
  { url: '/v1/shapes', body: { graph: mlp, inputs: { x: { shape: [4, 3], datatype: 'FP32' }, w: { shape: [3, 2] }, b: [0, 0] } } },
  { url: '/v1/evaluate', body: { graph: mlp, inputs, encoding: 'binary' } },
  { url: '/v1/grad', body: { graph: mlp, inputs, of: 'loss', wrt: ['w'], encoding: 'b64' } },
  { url: '/v1/vjp', body: { graph: mlp, inputs, cotangents: { a: [[[1, 0], [0, 1]], [[0, 1], [1, 0]]] }, wrt: ['x', 'w'], batched: true } },
  { url: '/v1/jvp', body: { graph: mlp, inputs, tangents: { b: [[1, 0], [0, 1], [1, 1]] }, of: ['a', 'loss'], batched: true } },
  { url: '/v1/hvp', body: { graph: mlp, inputs, of: 'loss', vectors: { b: [[1, 0], [0, 1]] }, batched: true } },
  { url: '/v1/grad', body: { graph: mlp, inputs, of: 'loss', wrt: ['w', 'x'], per_example: { axis: 0, inputs: ['x'] } } },
  { url: '/v2/models/mlp/infer', body: { inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [0.1, -0.2, 0.3, 0.5, 0.4, -0.6] }, { name: 'w', shape: [3, 2], datatype: 'FP32', data: [1, 2, 3, -1, 0.5, 0] }, { name: 'b', shape: [2], datatype: 'FP32', data: [0.1, -0.1] }], outputs: [{ name: 'a' }, { name: 'grad:w', parameters: { of: 'loss' } }] } },
];

const OPS = ALL_OPS.map((o) => o.name);
const NAMES = ['x', 'w', 'b', 'h', 'z', 'a', 'a2', 'loss', 'two', '__proto__', 'constructor', 'grad:w', 'cotangent:a', ''];

const odd: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    null, true, false, 0, -1, 1, 0.5, 3, 64, 65, 2 ** 31, 2 ** 53, 2 ** 60, 1e308, -1e308, 1e-320, '', 'x', 'NaN', 'Infinity',
    '-Infinity', 'FP64', 'INT64', 'BOOL', 'float16', 'binary', 'b64', [], {}, [[]], [0], [-1], [2, 2], [1e9, 1e9], [0, 2 ** 53],
    [null], ['x'], { shape: [2], data: [1, 2] }, { shape: [], datatype: 'INT64', data: ['9007199254740993'] },
    { shape: [2], datatype: 'FP32', b64: 'AAAAAAAAAAA=' }, { shape: [2], datatype: 'FP32', b64: '!!' },
    { shape: [2], datatype: 'FP32', binary_data_size: 8 }, { shape: [3], datatype: 'FP32', binary_data_size: 8, binary_data_offset: 0 },
  ),
  fc.integer({ min: -3, max: 70 }),
  fc.constantFrom(...NAMES),
  fc.constantFrom(...OPS),
  fc.string({ maxLength: 6 }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

interface Mutation { kind: 'replace' | 'delete' | 'insert' | 'copy' | 'op' | 'node'; at: number; from: number; value: Json }

const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('replace', 'replace', 'delete', 'insert', 'copy', 'op', 'node', 'node'),
  at: fc.nat(),
  from: fc.nat(),
  value: odd,
});

/** Every container and leaf of `v` with its parent and key, depth first. */
function places(v: Json): { parent: Json[] | { [k: string]: Json } | null; key: string | number; value: Json }[] {
  const out: { parent: Json[] | { [k: string]: Json } | null; key: string | number; value: Json }[] = [{ parent: null, key: '', value: v }];
  const stack: Json[] = [v];
  while (stack.length > 0) {
    const cur = stack.pop()!;
    if (Array.isArray(cur)) cur.forEach((x, i) => { out.push({ parent: cur, key: i, value: x }); stack.push(x); });
    else if (cur !== null && typeof cur === 'object') for (const [k, x] of Object.entries(cur)) { out.push({ parent: cur, key: k, value: x }); stack.push(x); }
  }
  return out;
}

function mutate(body: Json, ms: readonly Mutation[]): Json {
  const root = { body: structuredClone(body) } as { body: Json };
  for (const m of ms) {
    const ps = places(root.body).filter((p) => p.parent !== null);
    if (ps.length === 0) break;
    const p = ps[m.at % ps.length]!;
    const parent = p.parent!;
    const set = (v: Json): void => {
      (parent as Record<string | number, Json>)[p.key] = v;
    };
    switch (m.kind) {
      case 'replace':
        set(structuredClone(m.value));
        break;
      case 'delete':
        if (Array.isArray(parent)) parent.splice(p.key as number, 1);
        else delete parent[p.key as string];
        break;
      case 'insert':
        if (Array.isArray(p.value)) p.value.push(structuredClone(m.value));
        else if (p.value !== null && typeof p.value === 'object') p.value[typeof m.value === 'string' ? m.value || 'extra' : 'extra'] = structuredClone(m.value);
        else set([p.value, structuredClone(m.value)]);
        break;
      case 'copy':
        set(structuredClone(ps[m.from % ps.length]!.value));
        break;
      case 'op': {
        // a node of the graph gets another op, with the attrs of one of its samples or its old ones
        const nodes = places(root.body).filter((q) => q.key === 'op' && typeof q.value === 'string');
        if (nodes.length > 0) {
          const node = nodes[m.at % nodes.length]!.parent as Record<string, Json>;
          const op = ALL_OPS[m.from % ALL_OPS.length]!;
          node.op = op.name;
          const sample = op.samples[m.at % op.samples.length];
          if (sample !== undefined && m.at % 3 !== 0) node.attrs = structuredClone((sample.attrs ?? {}) as Json);
        }
        break;
      }
      case 'node': {
        // a new node, a random op on values of the graph (with a sample's attrs), made an output
        const graph = (root.body as Record<string, Json>)?.graph as Record<string, Json> | undefined;
        if (graph === undefined || !Array.isArray(graph.nodes)) break;
        const op = ALL_OPS[m.from % ALL_OPS.length]!;
        const sample = op.samples[m.at % op.samples.length];
        const arity = sample?.inputs.length ?? 1;
        const pool = ['x', 'w', 'b', 'h', 'z', 'a', 'loss', 'two'];
        const ins = Array.from({ length: arity }, (_, i) => pool[(m.at + 3 * i) % pool.length]!);
        const name = `fz${m.at % 1000}`;
        graph.nodes.push({ name, op: op.name, inputs: ins, ...(sample?.attrs ? { attrs: structuredClone(sample.attrs as Json) } : {}) });
        if (Array.isArray(graph.outputs)) graph.outputs.push(name);
        break;
      }
    }
  }
  return root.body;
}

/** The body framed: every tensor object with `data` given as a flat number list moves to the binary section. */
function framed(body: Json): { payload: Buffer; headerLength: number } {
  const blobs: Buffer[] = [];
  const walk = (v: Json): Json => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, Json>;
    const data = o.data;
    if (Array.isArray(o.shape) && Array.isArray(data) && data.every((d) => typeof d === 'number')) {
      const dt = o.datatype === 'FP64' ? 'FP64' : 'FP32';
      const arr = dt === 'FP64' ? Float64Array.from(data as number[]) : Float32Array.from(data as number[]);
      blobs.push(Buffer.from(arr.buffer));
      const { data: _d, ...rest } = o;
      return { ...rest, datatype: dt, binary_data_size: arr.byteLength };
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
  };
  const header = Buffer.from(JSON.stringify(walk(body)));
  return { payload: Buffer.concat([header, ...blobs]), headerLength: header.length };
}

interface ByteMutation { kind: 'flip' | 'cut' | 'pad' | 'length' | 'lengthText' | 'none'; at: number; bit: number; delta: number }

const byteMutation: fc.Arbitrary<ByteMutation> = fc.record({
  kind: fc.constantFrom('flip', 'flip', 'cut', 'pad', 'length', 'lengthText', 'none'),
  at: fc.nat(),
  bit: fc.nat({ max: 7 }),
  delta: fc.integer({ min: -40, max: 40 }),
});

function mutateFrame(f: { payload: Buffer; headerLength: number }, ms: readonly ByteMutation[]): { payload: Buffer; header: string } {
  let payload = Buffer.from(f.payload);
  let header = String(f.headerLength);
  for (const m of ms) {
    switch (m.kind) {
      case 'flip':
        if (payload.length > 0) payload[m.at % payload.length]! ^= 1 << m.bit;
        break;
      case 'cut':
        payload = payload.subarray(0, m.at % (payload.length + 1));
        break;
      case 'pad':
        payload = Buffer.concat([payload, Buffer.alloc(Math.abs(m.delta) % 9, m.bit)]);
        break;
      case 'length':
        header = String(Number(header) + m.delta);
        break;
      case 'lengthText': {
        // bit flips in the header's decimal text: a digit becomes another character
        const b = Buffer.from(header);
        if (b.length > 0) b[m.at % b.length]! ^= 1 << m.bit;
        header = b.toString('latin1');
        break;
      }
      case 'none':
        break;
    }
  }
  return { payload, header };
}

let app: GradserveApp;
let dir: string;
const seen = { requests: 0, ok: 0, client: 0 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gradserve-fuzz-'));
  writeFileSync(join(dir, 'mlp.json'), JSON.stringify(mlp));
  // Small limits keep every mutated request cheap; the request timeout is far above anything the seeds need.
  app = await makeApp({
    modelRepository: dir, maxTensorElements: 100_000, maxNodes: 200, requestMemoryBytes: 64 * 1024 ** 2,
    serverMemoryBytes: 256 * 1024 ** 2, requestTimeoutMs: 30_000, bodyLimitBytes: 1024 ** 2,
  });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

function checkAnswer(url: string, res: { statusCode: number; headers: Record<string, unknown>; body: string }, what: () => string): void {
  seen.requests++;
  expect(res.statusCode, `${what()}\n-> ${res.statusCode} ${res.body.slice(0, 500)}`).toBeLessThan(500);
  if (res.statusCode < 400) {
    seen.ok++;
    return;
  }
  seen.client++;
  if (!url.startsWith('/v1/')) {
    expect(typeof (JSON.parse(res.body) as { error?: unknown }).error, what()).toBe('string');
    return;
  }
  expect(String(res.headers['content-type']), what()).toMatch(/^application\/problem\+json/);
  const p = JSON.parse(res.body) as { code: keyof typeof ERROR_CATALOGUE; status: number; type: string; title: string; detail: string };
  expect(ERROR_CATALOGUE[p.code]?.status, `${what()}\n-> ${res.body.slice(0, 300)}`).toBe(res.statusCode);
  expect(p.status).toBe(res.statusCode);
  expect(p.type).toBe(`https://gradserve.dev/errors/${p.code}`);
  expect(typeof p.detail).toBe('string');
}

/** The README's linear layer, its VJP checked against plain arithmetic. */
async function knownGood(): Promise<void> {
  const x = [3, -1];
  const w = [0.5, 1, -2, 4, 0, 1];
  const dy = [1, 2, 3];
  const r = await app.inject({ method: 'POST', url: '/v1/vjp', payload: { graph: linearGraph, inputs: { x: [x], w: { shape: [2, 3], data: w } }, cotangents: { y: [dy] }, wrt: ['x', 'w'] } });
  expect(r.statusCode).toBe(200);
  const b = r.json() as { outputs: { y: { data: number[] } }; gradients: { x: { data: number[] }; w: { data: number[] } } };
  closeTo(b.outputs.y.data, matmul(x, w, 1, 2, 3));
  closeTo(b.gradients.x.data, matmul(dy, transpose(w, 2, 3), 1, 3, 2));
  closeTo(b.gradients.w.data, matmul(transpose(x, 1, 2), dy, 2, 1, 3));
}

describe('HTTP fuzzing (bounded)', () => {
  it('the seeds are valid requests', async () => {
    for (const s of SEEDS) {
      const res = await app.inject({ method: 'POST', url: s.url, payload: JSON.stringify(s.body), headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, `${s.url}: ${res.body.slice(0, 300)}`).toBe(200);
      const f = framed(s.body);
      const fr = await app.inject({ method: 'POST', url: s.url, payload: f.payload, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(f.headerLength) } });
      expect(fr.statusCode, `${s.url} framed: ${fr.body.slice(0, 300)}`).toBe(s.url.startsWith('/v2') ? 400 : 200);
    }
  });

  it.each(Array.from({ length: BATCHES }, (_, i) => i))('mutated JSON requests, batch %i: no 5xx, problem+json 4xx', async (batch) => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), async (k, ms, binaryAnswer) => {
        const s = SEEDS[k % SEEDS.length]!;
        const body = mutate(s.body, ms);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (binaryAnswer) headers.accept = 'application/octet-stream';
        const text = JSON.stringify(body);
        const res = await app.inject({ method: 'POST', url: s.url, payload: text, headers });
        checkAnswer(s.url, res, () => `POST ${s.url} ${text.slice(0, 800)}`);
      }),
      { numRuns: RUNS, seed: SEED + batch, endOnFailure: true },
    );
    await knownGood();
  });

  it.each(Array.from({ length: BATCHES }, (_, i) => i))('mutated binary-framed requests, batch %i: no 5xx, problem+json 4xx', async (batch) => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(mutation, { maxLength: 2 }), fc.array(byteMutation, { minLength: 1, maxLength: 3 }), async (k, ms, bs) => {
        const s = SEEDS[k % SEEDS.length]!;
        const { payload, header } = mutateFrame(framed(mutate(s.body, ms)), bs);
        const res = await app.inject({
          method: 'POST', url: s.url, payload,
          headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': header },
        });
        checkAnswer(s.url, res, () => `POST ${s.url} framed, header ${JSON.stringify(header)}: ${payload.subarray(0, 600).toString('latin1')}`);
      }),
      { numRuns: RUNS, seed: SEED + 100 + batch, endOnFailure: true },
    );
    await knownGood();
  });

  it('raw bytes: JSON text with bytes flipped, cut or padded, on every route', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(byteMutation, { minLength: 1, maxLength: 3 }), async (k, bs) => {
        const s = SEEDS[k % SEEDS.length]!;
        const text = Buffer.from(JSON.stringify(s.body));
        const { payload } = mutateFrame({ payload: text, headerLength: 0 }, bs);
        const res = await app.inject({ method: 'POST', url: s.url, payload, headers: { 'content-type': 'application/json' } });
        checkAnswer(s.url, res, () => `POST ${s.url} ${payload.toString('latin1').slice(0, 800)}`);
      }),
      { numRuns: RUNS, seed: SEED + 200, endOnFailure: true },
    );
    await knownGood();
    // the fuzzer reached past the parser: some mutated requests ran, many were refused
    expect(seen.ok).toBeGreaterThan(20);
    expect(seen.client).toBeGreaterThan(20);
  });
});
