/**
 * No request can stall the others or take the process down: JSON bodies parsed on worker threads give the inline
 * answers, hostile shapes (scaled down through the config's limits) are 413s, and a worker that dies or runs too long
 * fails only its own request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { GradserveError } from '../../src/errors.js';
import { ParsePool } from '../../src/server/parse_pool.js';
import { PreparsedArray } from '../../src/tensor/preparsed.js';
import { linearGraph, makeApp } from './helpers.js';

/** A JSON text as body blocks the pool may take (each owning its ArrayBuffer). */
function blocks(text: string): [Uint8Array[], number] {
  const b = Buffer.from(text);
  const u = new Uint8Array(b.length);
  u.set(b);
  return [[u], u.length];
}

function rejection(p: Promise<unknown>): Promise<GradserveError> {
  return p.then(
    () => {
      throw new Error('expected the parse to fail');
    },
    (e: unknown) => e as GradserveError,
  );
}

const zeros = (n: number): string => `[${new Array(n).fill(0).join(',')}]`;
const deep = (n: number): string => `${'['.repeat(n)}1${']'.repeat(n)}`;

describe('JSON bodies parsed on worker threads, over HTTP', () => {
  let offThread: GradserveApp;
  let inline: GradserveApp;
  beforeAll(async () => {
    // Every body goes to a worker in one app, none in the other.
    offThread = await makeApp({ maxTensorElements: 10_000, bodyParsing: { offThreadBytes: 0 } });
    inline = await makeApp({ maxTensorElements: 10_000, bodyParsing: { threads: 0 } });
  });
  afterAll(async () => {
    await offThread.close();
    await inline.close();
  });

  const mixedGraph = {
    inputs: { a: { datatype: 'FP32' }, x: { datatype: 'FP64' } },
    nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }, { name: 'z', op: 'neg', inputs: ['a'] }],
    outputs: ['y', 'z'],
  };
  const rows = Array.from({ length: 1500 }, (_, i) => [i / 3, -i]);
  const cases: [string, string, string, string?][] = [
    ['shorthand tensors', '/v1/evaluate', JSON.stringify({ graph: linearGraph, inputs: { x: rows, w: [[1, 2, 3], [4, 5, 6]] } })],
    ['datatype from the graph', '/v1/evaluate', JSON.stringify({ graph: mixedGraph, inputs: { a: [1.1, 2.2], x: rows.flat() } })],
    // The cotangent's datatype is inferred (FP64): the worker guessed the first input's (FP32).
    ['cotangent of an inferred datatype', '/v1/vjp', JSON.stringify({ graph: mixedGraph, inputs: { a: rows.flat(), x: rows.flat() }, cotangents: { y: rows.flat().map((v) => v * 1e-40) }, wrt: ['x'] })],
    ['b64 in and out', '/v1/evaluate', JSON.stringify({ graph: linearGraph, encoding: 'b64', inputs: { x: { shape: [1024, 2], datatype: 'FP32', b64: Buffer.from(new Float32Array(2048).fill(0.25).buffer).toString('base64') }, w: { shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] } } })],
    ['non-finite strings and nested data', '/v1/evaluate', JSON.stringify({ graph: linearGraph, inputs: { x: { shape: [3, 2], data: [['NaN', 1], ['Infinity', '-Infinity'], [0, -0]] }, w: [[1, 2, 3], [4, 5, 6]] } })],
    ['ragged nesting', '/v1/evaluate', JSON.stringify({ graph: linearGraph, inputs: { x: [...rows, [1]], w: [[1, 2, 3], [4, 5, 6]] } })],
    ['data length against shape', '/v1/evaluate', JSON.stringify({ graph: linearGraph, inputs: { x: { shape: [1501, 2], datatype: 'FP32', data: rows.flat() }, w: [[1, 2, 3], [4, 5, 6]] } })],
    ['a value FP32 cannot hold', '/v1/evaluate', JSON.stringify({ graph: linearGraph, inputs: { x: [...rows, [1e39, 0]], w: [[1, 2, 3], [4, 5, 6]] } })],
    ['a fraction in INT32 data', '/v1/evaluate', JSON.stringify({ graph: linearGraph, inputs: { x: { shape: [3000], datatype: 'INT32', data: [...new Array(2999).fill(1), 1.5] }, w: [[1]] } })],
    ['corrupt base64', '/v1/evaluate', JSON.stringify({ graph: linearGraph, inputs: { x: { shape: [2048], datatype: 'FP32', b64: `${'A'.repeat(8188)}!AAA` }, w: [[1]] } })],
    ['not JSON', '/v1/evaluate', '{"graph": [1, 2'],
    ['not JSON, sent as octet-stream without framing', '/v1/evaluate', 'binary?', 'application/octet-stream'],
    ['an empty body', '/v1/evaluate', ''],
    ['prototype poisoning', '/v1/evaluate', '{"graph": {"nodes": []}, "inputs": {"\\u005f_proto__": {"x": 1}}}'],
    ['nesting too deep', '/v1/evaluate', `{"graph": {"nodes": []}, "inputs": {"x": ${deep(300)}}}`],
  ];

  it.each(cases)('gives the inline answer: %s', async (_name, url, payload, type) => {
    const send = (app: GradserveApp) => app.inject({ method: 'POST', url, payload, headers: { 'content-type': type ?? 'application/json' } });
    const [a, b] = [await send(offThread), await send(inline)];
    expect(a.statusCode).toBe(b.statusCode);
    expect(a.json()).toStrictEqual(b.json());
  });

  it('refuses a flat array over the per-tensor element limit with 413, and keeps serving', async () => {
    const r = await offThread.inject({ method: 'POST', url: '/v1/evaluate', payload: `{"graph": ${JSON.stringify(linearGraph)}, "inputs": {"x": ${zeros(20_000)}}}`, headers: { 'content-type': 'application/json' } });
    expect(r.statusCode).toBe(413);
    expect(r.json()).toMatchObject({ code: 'TOO_LARGE', errors: [{ path: 'inputs.x', message: expect.stringMatching(/over the limit of 10000 per tensor/) }] });
    const ok = await offThread.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().outputs.y.data).toEqual([9, 12, 15]);
  });

  it('refuses a million empty arrays with 413 before building them', async () => {
    // 110 rows of 10,000 empty arrays: no array is over the element limit, the structure is.
    const row = `[${'[],'.repeat(9_999)}[]]`;
    const payload = `{"graph": ${JSON.stringify(linearGraph)}, "inputs": {"x": [${`${row},`.repeat(109)}${row}]}}`;
    const r = await offThread.inject({ method: 'POST', url: '/v1/evaluate', payload, headers: { 'content-type': 'application/json' } });
    expect(r.statusCode).toBe(413);
    expect(r.json().detail).toMatch(/^the body has 1100123 arrays and objects for 11 values/);
  });
});

describe('ParsePool', () => {
  const big = JSON.stringify({ graph: { nodes: [] }, inputs: { x: { shape: [2_000_000], datatype: 'FP32', data: Array.from({ length: 2_000_000 }, (_, i) => i * 0.001) } } });

  it('hands back the request with its tensors decoded', async () => {
    const pool = new ParsePool({ threads: 1, maxTensorElements: 2 ** 28, timeoutMs: 60_000 });
    try {
      const v = (await pool.parse(...blocks(big))) as { inputs: { x: { shape: number[]; data: unknown } } };
      expect(v.inputs.x.shape).toEqual([2_000_000]);
      expect(v.inputs.x.data).toBeInstanceOf(PreparsedArray);
      expect((v.inputs.x.data as PreparsedArray).spec.decoded).toBeInstanceOf(Float32Array);
    } finally {
      await pool.close();
    }
  });

  it('a worker that dies mid-parse fails that request only (500), and the next one gets a new worker', async () => {
    const pool = new ParsePool({ threads: 1, maxTensorElements: 2 ** 28, timeoutMs: 60_000 });
    try {
      const dying = pool.parse(...blocks(big));
      await new Promise((r) => setTimeout(r, 50));
      await pool.crashForTest();
      const e = await rejection(dying);
      expect(e).toBeInstanceOf(GradserveError);
      expect(e.code).toBe('INTERNAL');
      expect(await pool.parse(...blocks('{"a": [1, 2]}'))).toEqual({ a: [1, 2] });
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('a worker out of memory fails that request with 413, not the process', async () => {
    // The memory estimate is switched off (heapShare) so that the worker really runs out of its 12 MB. (Node 24 parses
    // this body within 24 MB some of the time, so a 24 MB worker does not reliably run out.)
    const pool = new ParsePool({ threads: 1, maxTensorElements: 2 ** 28, timeoutMs: 60_000, heapShare: 1000, resourceLimits: { maxOldGenerationSizeMb: 12, maxYoungGenerationSizeMb: 4 } });
    try {
      const e = await rejection(pool.parse(...blocks(big)));
      expect(e.code).toBe('TOO_LARGE');
      expect(await pool.parse(...blocks('[true]'))).toEqual([true]);
    } finally {
      await pool.close();
    }
  });

  it('the memory estimate refuses what a small worker heap cannot hold, before parsing', async () => {
    const pool = new ParsePool({ threads: 1, maxTensorElements: 2 ** 28, timeoutMs: 60_000, resourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 } });
    try {
      const e = await rejection(pool.parse(...blocks(big)));
      expect(e.code).toBe('TOO_LARGE');
      expect(e.detail).toMatch(/a parse may use/);
      expect(pool.started).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('an idle worker is stopped, and started again when needed', async () => {
    const pool = new ParsePool({ threads: 1, maxTensorElements: 2 ** 28, timeoutMs: 60_000, idleMs: 50 });
    try {
      expect(await pool.parse(...blocks('[1]'))).toEqual([1]);
      await new Promise((r) => setTimeout(r, 300));
      expect(await pool.parse(...blocks('[2]'))).toEqual([2]);
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('a parse past the time limit is stopped with 504', async () => {
    const pool = new ParsePool({ threads: 1, maxTensorElements: 2 ** 28, timeoutMs: 1 });
    try {
      expect((await rejection(pool.parse(...blocks(big)))).code).toBe('DEADLINE_EXCEEDED');
    } finally {
      await pool.close();
    }
  });

  it('close() fails what is queued and running', async () => {
    const pool = new ParsePool({ threads: 1, maxTensorElements: 2 ** 28, timeoutMs: 60_000 });
    const running = rejection(pool.parse(...blocks(big)));
    const queued = rejection(pool.parse(...blocks(big)));
    await pool.close();
    expect((await running).code).toBe('OVERLOADED');
    expect((await queued).code).toBe('OVERLOADED');
    expect((await rejection(pool.parse(...blocks('1')))).code).toBe('OVERLOADED');
  });
});
