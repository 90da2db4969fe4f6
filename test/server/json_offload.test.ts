/**
 * The off-event-loop JSON path gives exactly what the inline path gives: the same tensors and the same errors, for
 * every way a request writes its tensors. The worker's steps run in-process here (prescan, parse, lift, a structured
 * clone with transfer as postMessage does, attach); test/server/robustness.test.ts runs them on real threads.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.types.js';
import { GradserveError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/types.js';
import { kernels } from '../../src/kernels.js';
import { parseJsonText } from '../../src/server/body.js';
import { prescanJson } from '../../src/server/json_prescan.js';
import { attachTensors, liftLarge, liftTensors, restoreLarge } from '../../src/server/json_tensors.js';
import { decodeInputs, decodeKeyed, decodeShapeInputs } from '../../src/server/tensors.js';
import type { DType } from '../../src/tensor/dtype.js';
import { PreparsedArray, PreparsedB64 } from '../../src/tensor/preparsed.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { decodeTensor } from '../../src/tensor/wire.js';

/** What the worker does to a body, minus the thread: `min` lifts even the smallest arrays and strings. */
function viaWorker(text: string, min = 1): unknown {
  const buf = Buffer.from(text);
  prescanJson(buf, { maxTensorElements: 2 ** 28, heapBudget: Infinity });
  const value = parseJsonText(buf);
  const { lifted, transfer } = liftTensors(value, min, min);
  const back = structuredClone({ value, lifted }, { transfer });
  attachTensors(back.value, back.lifted);
  return back.value;
}

/** The same with long strings and arrays of numbers elsewhere lifted too (from `min` characters or elements). */
async function viaWorkerAll(text: string, min: number): Promise<unknown> {
  const value = parseJsonText(Buffer.from(text));
  const t = liftTensors(value, min, min);
  const l = liftLarge(value, min, min);
  const back = structuredClone({ value, lifted: t.lifted, large: l.large }, { transfer: [...t.transfer, ...l.transfer] });
  attachTensors(back.value, back.lifted);
  await restoreLarge(back.value, back.large);
  return back.value;
}

type Outcome = { tensors: Record<string, { dtype: string; shape: number[]; data: unknown[] }> } | { error: { code: string; detail: string; errors: unknown } };

function outcome(fn: () => Record<string, Tensor>): Outcome {
  try {
    const ts = fn();
    const tensors: Record<string, { dtype: string; shape: number[]; data: unknown[] }> = {};
    for (const [k, t] of Object.entries(ts)) tensors[k] = { dtype: t.dtype, shape: [...t.shape], data: Array.from(t.data as ArrayLike<unknown>) };
    return { tensors };
  } catch (e) {
    if (!(e instanceof GradserveError)) throw e;
    return { error: { code: e.code, detail: e.detail, errors: e.errors } };
  }
}

/** A fake engine for decodeKeyed: every non-input value is inferred as `inferred`. */
function engineInferring(inferred: DType): Engine {
  return {
    shapes: (graph: Graph) => {
      const values: Record<string, { shape: number[]; datatype: DType }> = {};
      for (const n of graph.nodes) values[n.name] = { shape: [], datatype: inferred };
      return { values, flops: 0, peakBytes: 0 };
    },
  } as unknown as Engine;
}

/** The v1 decoding of a body (inputs, then cotangents), as the routes do it. */
function decodeV1(body: unknown, inferred: DType): Outcome {
  const b = body as { graph: Graph; inputs: Record<string, unknown>; cotangents?: Record<string, unknown> };
  return outcome(() => {
    const inputs = decodeInputs(b.graph, b.inputs, 2 ** 28);
    const out: Record<string, Tensor> = { ...inputs };
    if (b.cotangents !== undefined) {
      for (const [k, t] of Object.entries(decodeKeyed(engineInferring(inferred), b.graph, inputs, b.cotangents, 'cotangents', 2 ** 28))) out[`cot:${k}`] = t;
    }
    return out;
  });
}

function decodeShapes(body: unknown): Outcome {
  const b = body as { graph: Graph; inputs: Record<string, unknown> };
  return outcome(() => {
    const r = decodeShapeInputs(b.graph, b.inputs, 2 ** 28);
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(r)) if ('data' in v) out[k] = v;
    return out;
  });
}

function decodeOip(body: unknown): Outcome {
  const b = body as { inputs: { name: string; shape: unknown; datatype: unknown; data: unknown }[] };
  return outcome(() => {
    const out: Record<string, Tensor> = {};
    b.inputs.forEach((inp, i) => {
      out[inp.name] = decodeTensor({ shape: inp.shape, datatype: inp.datatype, data: inp.data }, `inputs[${i}]`);
    });
    return out;
  });
}

// Elements chosen to hit every branch of fillFlat for every datatype.
const ELEMENTS: unknown[] = [
  0, 1, -1, 2, 0.5, -0, 1e39, -1e39, 3.4028234663852886e38, 2 ** 31, -(2 ** 31), 2 ** 53 - 1, 2 ** 53 + 2, 1e-45,
  true, false, 'NaN', 'Infinity', '-Infinity', 'nan', '123', '-9007199254740993', '99999999999999999999', null, [], {},
  'x'.repeat(60), `${'7'.repeat(45)}`,
];
const DATATYPES = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL', 'float64', 'int8'];

const element = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -3, max: 3 }) },
  { weight: 3, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 3, arbitrary: fc.constantFrom(...ELEMENTS) },
);

/** Nested data for a shape, sometimes made ragged. */
function nest(flat: unknown[], shape: number[]): unknown {
  if (shape.length <= 1) return flat;
  const [d, ...rest] = shape as [number, ...number[]];
  const size = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: d }, (_, i) => nest(flat.slice(i * size, (i + 1) * size), rest));
}

const tensorWire = fc
  .record({
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 }),
    elems: fc.array(element, { minLength: 0, maxLength: 70 }),
    form: fc.constantFrom('object', 'objectNoType', 'objectNoShape', 'shorthand', 'b64', 'scalarData'),
    nested: fc.boolean(),
    datatype: fc.constantFrom(...DATATYPES),
    mutate: fc.constantFrom('none', 'none', 'none', 'drop', 'extra', 'ragged', 'deep', 'b64chars', 'b64pad'),
    seed: fc.integer({ min: 0, max: 1000 }),
  })
  .map((r) => {
    const n = r.shape.reduce((a, b) => a * b, 1);
    let flat = Array.from({ length: n }, (_, i) => r.elems.length === 0 ? (i % 3) - 1 : r.elems[(i + r.seed) % r.elems.length]);
    if (r.mutate === 'drop') flat = flat.slice(1);
    if (r.mutate === 'extra') flat = [...flat, 1];
    let data: unknown = r.nested && r.mutate !== 'drop' && r.mutate !== 'extra' ? nest(flat, r.shape) : flat;
    if (r.mutate === 'ragged' && Array.isArray(data) && Array.isArray(data[0])) (data[0] as unknown[]).push(1);
    if (r.mutate === 'deep') data = [[[[data]]]];
    if (r.form === 'shorthand') return data;
    if (r.form === 'scalarData') return { shape: [], datatype: r.datatype, data: r.elems[0] ?? 1 };
    if (r.form === 'b64') {
      const width = { FP32: 4, FP64: 8, INT32: 4, INT64: 8, BOOL: 1, float64: 8, int8: 1 }[r.datatype]!;
      const bytes = Buffer.alloc(n * width + (r.mutate === 'extra' ? width : 0));
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + r.seed) & 0xff;
      let b64 = bytes.toString('base64');
      if (r.mutate === 'b64chars' && b64.length > 4) b64 = `${b64.slice(0, 2)}!${b64.slice(3)}`;
      if (r.mutate === 'b64pad') b64 = `${b64}=`;
      return { shape: r.shape, datatype: r.datatype, b64 };
    }
    const o: Record<string, unknown> = { shape: r.shape, data };
    if (r.form === 'objectNoShape') delete o['shape'];
    if (r.form !== 'objectNoType') o['datatype'] = r.datatype;
    return o;
  });

describe('long strings and arrays of numbers outside tensor fields come back exactly', () => {
  // Code units from every range: ASCII, Latin-1, the rest of the BMP, astral pairs and lone surrogates.
  const unit = fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }),
    fc.integer({ min: 0x80, max: 0xff }),
    fc.integer({ min: 0x100, max: 0xd7ff }),
    fc.integer({ min: 0xd800, max: 0xdfff }),
  ).map((c) => String.fromCharCode(c));
  const text = fc.array(unit, { maxLength: 40 }).map((a) => a.join(''));
  const numbers = fc.array(fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(-0)), { maxLength: 30 });
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, text, numbers, numbers.map((a) => [a, a]), fc.constant(null), fc.boolean(), fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(text, tie('v'), { maxKeys: 4 })),
  })).v;

  it('any request value, the thresholds made tiny', async () => {
    await fc.assert(
      fc.asyncProperty(value, fc.integer({ min: 1, max: 6 }), async (v, min) => {
        const body = JSON.stringify({ graph: { constants: { c: v } }, other: v });
        expect(await viaWorkerAll(body, min)).toStrictEqual(JSON.parse(body));
      }),
      { numRuns: 300, seed: 21 },
    );
  });

  it('graph constants: a long b64 string and a nested array of numbers', async () => {
    const b64 = Buffer.alloc(3 * 1024 * 1024, 7).toString('base64');
    const rows = Array.from({ length: 40_000 }, (_, i) => [i, -0, i / 3]);
    const body = JSON.stringify({ graph: { constants: { w: { shape: [3 * 1024 * 1024], datatype: 'BOOL', b64 }, m: { shape: [40_000, 3], data: rows } }, nodes: [] } });
    const value = parseJsonText(Buffer.from(body));
    expect(liftLarge(value).large.map((l) => l.at)).toEqual([['graph', 'constants', 'm', 'data'], ['graph', 'constants', 'w', 'b64']]);
    expect(await viaWorkerAll(body, 1 << 16)).toStrictEqual(JSON.parse(body));
  });
});

describe('worker-side lifting gives the inline results and errors', () => {
  it('v1 inputs and cotangents: tensors, datatypes from the graph or the value, every error', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('x', 'w', 'b', 'y', 'z'), tensorWire, { maxKeys: 3 }),
        fc.dictionary(fc.constantFrom('x', 'w', 'y', 'out'), tensorWire, { maxKeys: 2 }),
        fc.dictionary(fc.constantFrom('x', 'w', 'b', 'y'), fc.constantFrom(...DATATYPES, undefined)),
        fc.constantFrom<DType>('FP32', 'FP64', 'INT32', 'BOOL'),
        (inputs, cotangents, declared, inferred) => {
          const graph = {
            inputs: Object.fromEntries(Object.entries(declared).map(([k, d]) => [k, d === undefined ? {} : { datatype: d }])),
            nodes: [{ name: 'out', op: 'neg', inputs: ['x'] }],
          };
          const text = JSON.stringify({ graph, inputs, cotangents });
          const want = decodeV1(parseJsonText(text), inferred);
          expect(decodeV1(viaWorker(text), inferred)).toStrictEqual(want);
          expect(decodeShapes(viaWorker(text))).toStrictEqual(decodeShapes(parseJsonText(text)));
        },
      ),
      { numRuns: 400, seed: 12 },
    );
  });

  it('a cotangent whose datatype is inferred on the event loop, whatever the worker guessed', () => {
    const untyped = tensorWire.filter((w) => Array.isArray(w) || (typeof w === 'object' && w !== null && (w as { datatype?: unknown }).datatype === undefined));
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('x', 'w'), tensorWire, { maxKeys: 2 }),
        untyped,
        fc.constantFrom<DType>('FP32', 'FP64', 'INT32', 'INT64', 'BOOL'),
        (inputs, cot, inferred) => {
          const graph = { inputs: { x: {} }, nodes: [{ name: 'out', op: 'neg', inputs: ['x'] }] };
          const text = JSON.stringify({ graph, inputs, cotangents: { out: cot } });
          expect(decodeV1(viaWorker(text), inferred)).toStrictEqual(decodeV1(parseJsonText(text), inferred));
        },
      ),
      { numRuns: 400, seed: 14 },
    );
  });

  it('Open Inference Protocol inputs', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(tensorWire, fc.constantFrom(...DATATYPES)), { maxLength: 3 }), (items) => {
        const inputs = items.map(([w, dt], i) => ({ name: `in${i}`, shape: (w as { shape?: unknown }).shape ?? [], datatype: dt, data: Array.isArray(w) ? w : (w as { data?: unknown }).data }));
        const text = JSON.stringify({ inputs });
        expect(decodeOip(viaWorker(text))).toStrictEqual(decodeOip(parseJsonText(text)));
      }),
      { numRuns: 300, seed: 13 },
    );
  });

  it('large arrays are lifted with their datatype decided, the rest stays in the request', () => {
    const x = Array.from({ length: 5000 }, (_, i) => i / 7);
    const text = JSON.stringify({
      graph: { inputs: { s: { datatype: 'FP64' } }, nodes: [] },
      inputs: { x: { shape: [5000], datatype: 'FP32', data: x }, s: [x.slice(0, 2000)], small: [1, 2, 3] },
      note: 'kept',
    });
    const value = parseJsonText(Buffer.from(text)) as { inputs: Record<string, { data?: unknown }> };
    const { lifted, transfer } = liftTensors(value);
    expect(lifted.map((l) => l.at)).toEqual([['inputs', 'x', 'data'], ['inputs', 's']]);
    const [xs, ss] = lifted.map((l) => ('array' in l ? l.array : undefined));
    // A datatype of its own is certain: nothing kept for another one. A shorthand keeps its exact values.
    expect(xs).toMatchObject({ dtype: 'FP32', count: 5000 });
    expect(xs!.values).toBeUndefined();
    expect(ss).toMatchObject({ dtype: 'FP64', count: 2000, nested: [1, 2000] });
    expect(ss!.values).toBe(ss!.decoded);
    expect(transfer).toHaveLength(2);
    expect(value.inputs['x']!.data).toBeNull();
    expect(value.inputs['small']).toEqual([1, 2, 3]);

    const back = viaWorker(text, 1000) as { inputs: Record<string, { data?: unknown }>; note: string };
    expect(back.inputs['x']!.data).toBeInstanceOf(PreparsedArray);
    expect(Array.isArray(back.inputs['s'])).toBe(true);
    expect(back.note).toBe('kept');
    const t = decodeTensor(back.inputs['x'], 'inputs.x');
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(t.data[4999]).toBe(Math.fround(4999 / 7));
    // Decoding the same request value twice hands out a copy the second time.
    expect(decodeTensor(back.inputs['x'], 'inputs.x').data).not.toBe(t.data);
  });

  it('b64 strings are decoded to bytes once, in the worker', () => {
    const f = Float32Array.from({ length: 2048 }, (_, i) => i - 0.5);
    const b64 = Buffer.from(f.buffer).toString('base64');
    const bools = Buffer.from(Array.from({ length: 6000 }, (_, i) => i % 3)).toString('base64');
    const text = JSON.stringify({ graph: { nodes: [] }, inputs: { w: { shape: [2048], datatype: 'FP32', b64 }, m: { shape: [6000], datatype: 'BOOL', b64: bools } } });
    const back = viaWorker(text, 4096) as { inputs: Record<string, { b64: unknown }> };
    expect(back.inputs['w']!.b64).toBeInstanceOf(PreparsedB64);
    expect(Array.from(decodeTensor(back.inputs['w'], 'inputs.w').data as Float32Array)).toEqual(Array.from(f));
    const m = decodeTensor(back.inputs['m'], 'inputs.m').data as Uint8Array;
    expect([m[0], m[1], m[2], m[5997], m[5999]]).toEqual([0, 1, 1, 0, 1]);
  });

  it('an array with other elements than numbers, its datatype a guess, carries every datatype\'s outcome', () => {
    const text = JSON.stringify({ graph: { nodes: [] }, inputs: { x: Array.from({ length: 5000 }, (_, i) => String(i)), y: [...Array.from({ length: 10 }, () => 1), 'z'.repeat(100_000)] } });
    const { lifted } = liftTensors(parseJsonText(text), 1, 1);
    expect(lifted.map((l) => l.at)).toEqual([['inputs', 'x'], ['inputs', 'y']]);
    const [x, y] = lifted.map((l) => ('array' in l ? l.array : undefined));
    // Decimal strings are INT64 only; the guess (FP32) and the others fail at their first element.
    expect(x).toMatchObject({ dtype: 'FP32', error: 'element 0: "0" is not a FP32 number (non-finite values are "NaN", "Infinity", "-Infinity")' });
    expect(x!.values).toBeUndefined();
    expect(Array.from(x!.outcomes!.INT64!.decoded as BigInt64Array).slice(0, 3)).toEqual([0n, 1n, 2n]);
    expect(x!.outcomes!.BOOL!.error).toMatch(/^element 0: "0" is not a BOOL/);
    // A long string travels as the message that describes it, nothing more.
    expect(JSON.stringify(y).length).toBeLessThan(2000);
    for (const inferred of ['FP32', 'INT64', 'BOOL'] as const) {
      const cot = JSON.stringify({ graph: { inputs: { a: {} }, nodes: [{ name: 'out', op: 'neg', inputs: ['a'] }] }, inputs: {}, cotangents: { out: Array.from({ length: 3000 }, (_, i) => String(i)) } });
      expect(decodeV1(viaWorker(cot), inferred)).toStrictEqual(decodeV1(parseJsonText(cot), inferred));
    }
  });
});

describe('the event loop decodes large b64 tensors natively, with the results and errors of the string path', () => {
  /** Buffers of the size asked and more, full of garbage, as recycled ones are. */
  const recycled = (n: number): ArrayBuffer => new Uint8Array(n + 64).fill(0xa5).buffer;
  /** A body over 1 MiB (so that it is parsed by bigjson.ts), decoded natively or not. */
  const big = (body: object): Buffer => Buffer.from(JSON.stringify({ ...body, note: 'n'.repeat(1 << 20) }));
  const native = (buf: Buffer, alloc?: (n: number) => ArrayBuffer): unknown => parseJsonText(buf, {}, { decode: kernels.decodeBase64!, alloc });

  const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + seed) & 0xff));
  const b64Of = (n: number, seed: number): string => bytes(n, seed).toString('base64');
  const long = b64Of(6000, 1);
  const cases: [string, unknown][] = [
    ['FP32, padded', { shape: [1500], datatype: 'FP32', b64: long }],
    ['FP64, two padding characters', { shape: [751], datatype: 'FP64', b64: b64Of(6008, 2) }],
    ['INT32, one padding character', { shape: [1501], datatype: 'INT32', b64: b64Of(6004, 3) }],
    ['unpadded', { shape: [1501], datatype: 'INT32', b64: b64Of(6004, 3).replace(/=+$/, '') }],
    ['BOOL, bytes above 1', { shape: [6000], datatype: 'BOOL', b64: long }],
    ['no datatype (from the graph)', { shape: [750], b64: b64Of(6000, 4) }],
    ['a character outside the alphabet', { shape: [1500], datatype: 'FP32', b64: `${long.slice(0, 100)}!${long.slice(101)}` }],
    ['the URL-safe alphabet', { shape: [1500], datatype: 'FP32', b64: long.replace(/\+/g, '-').replace(/\//g, '_') }],
    ['padding in the middle', { shape: [1500], datatype: 'FP32', b64: `${long.slice(0, 100)}=${long.slice(101)}` }],
    ['one padding character too many', { shape: [1501], datatype: 'INT32', b64: `${b64Of(6004, 3)}=` }],
    ['a length no base64 has', { shape: [1500], datatype: 'FP32', b64: `${long}A` }],
    ['a length the shape does not take', { shape: [1499], datatype: 'FP32', b64: long }],
    ['an unknown datatype', { shape: [1500], datatype: 'FP16', b64: long }],
  ];

  it.each(cases)('%s', (_name, x) => {
    const graph = { inputs: { x: { datatype: 'FP64' } }, nodes: [{ name: 'out', op: 'neg', inputs: ['x'] }] };
    const body = { graph, inputs: { x }, cotangents: { out: { b64: b64Of(6000, 5) } } };
    const want = decodeV1(parseJsonText(big(body)), 'FP64');
    for (const alloc of [undefined, recycled]) {
      const got = native(big(body), alloc) as { inputs: { x: { b64: unknown } } };
      expect(decodeV1(got, 'FP64')).toStrictEqual(want);
    }
    // Strict base64 is decoded from the body bytes; the rest by Buffer's decoder, from the string.
    expect((native(big(body)) as { inputs: { x: { b64: unknown } } }).inputs.x.b64).toBeInstanceOf(PreparsedB64);
  });

  it('strings outside tensors stay strings, and the recycled buffer is the one decoded into', () => {
    const constant = { shape: [1500], datatype: 'FP32', b64: b64Of(6000, 9) };
    const body = { graph: { constants: { c: constant }, nodes: [] }, inputs: { x: { shape: [1500], datatype: 'FP32', b64: long } } };
    const given: ArrayBuffer[] = [];
    const v = native(big(body), (n) => { const b = recycled(n); given.push(b); return b; }) as { graph: unknown; inputs: { x: unknown } };
    expect(v.graph).toStrictEqual(body.graph);
    const x = decodeTensor(v.inputs.x, 'inputs.x');
    expect(given).toHaveLength(1);
    expect(x.data.buffer).toBe(given[0]);
    expect(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength).equals(bytes(6000, 1))).toBe(true);
  });
});
