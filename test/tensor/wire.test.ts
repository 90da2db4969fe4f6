import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GradserveError } from '../../src/errors.js';
import { decodeTensor, encodeTensor } from '../../src/tensor/wire.js';
import { tensor } from '../../src/tensor/tensor.js';

function invalidTensor(fn: () => unknown): GradserveError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GradserveError);
    const g = e as GradserveError;
    expect(g.code).toBe('INVALID_TENSOR');
    expect(g.status).toBe(400);
    return g;
  }
  throw new Error('expected INVALID_TENSOR');
}

function b64Of(a: ArrayBufferView): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

describe('decodeTensor: json', () => {
  it('decodes flat and nested data identically', () => {
    const flat = decodeTensor({ shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }, 'inputs.x');
    const nested = decodeTensor({ shape: [2, 3], datatype: 'FP32', data: [[1, 2, 3], [4, 5, 6]] }, 'inputs.x');
    expect(flat.dtype).toBe('FP32');
    expect(flat.shape).toEqual([2, 3]);
    expect(flat.data).toBeInstanceOf(Float32Array);
    expect(Array.from(flat.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(nested.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(nested.shape).toEqual([2, 3]);
  });

  it('accepts shape [] as a scalar and the lower-case aliases', () => {
    const t = decodeTensor({ shape: [], datatype: 'float64', data: [2.5] }, 'inputs.s');
    expect(t.dtype).toBe('FP64');
    expect(t.shape).toEqual([]);
    expect(t.data[0]).toBe(2.5);
    expect(decodeTensor({ shape: [1], datatype: 'int32', data: [7] }, 'p').dtype).toBe('INT32');
    expect(decodeTensor({ shape: [1], datatype: 'int64', data: [7] }, 'p').dtype).toBe('INT64');
    expect(decodeTensor({ shape: [1], datatype: 'bool', data: [true] }, 'p').dtype).toBe('BOOL');
    expect(decodeTensor({ shape: [1], datatype: 'float32', data: [1] }, 'p').dtype).toBe('FP32');
  });

  it('reads bare numbers as scalars and bare nested arrays with their nesting as shape', () => {
    const s = decodeTensor(3, 'inputs.a');
    expect(s.shape).toEqual([]);
    expect(s.dtype).toBe('FP32');
    expect(s.data[0]).toBe(3);
    const a = decodeTensor([[1, 2], [3, 4], [5, 6]], 'inputs.a', { dtype: 'FP64' });
    expect(a.shape).toEqual([3, 2]);
    expect(a.dtype).toBe('FP64');
    expect(Array.from(a.data as Float64Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(decodeTensor([], 'inputs.e').shape).toEqual([0]);
    expect(decodeTensor([[], []], 'inputs.e').shape).toEqual([2, 0]);
  });

  it('takes the datatype from the object, then the declaration, then FP32', () => {
    expect(decodeTensor({ shape: [1], datatype: 'INT32', data: [1] }, 'p', { dtype: 'FP64' }).dtype).toBe('INT32');
    expect(decodeTensor({ shape: [1], data: [1] }, 'p', { dtype: 'FP64' }).dtype).toBe('FP64');
    expect(decodeTensor({ shape: [1], data: [1] }, 'p').dtype).toBe('FP32');
  });

  it('reads non-finite strings', () => {
    const t = decodeTensor({ shape: [3], datatype: 'FP64', data: ['NaN', 'Infinity', '-Infinity'] }, 'p');
    const d = t.data as Float64Array;
    expect(Number.isNaN(d[0])).toBe(true);
    expect(d[1]).toBe(Infinity);
    expect(d[2]).toBe(-Infinity);
  });

  it('rounds FP32 values like a float32 cast', () => {
    const t = decodeTensor({ shape: [1], datatype: 'FP32', data: [0.1] }, 'p');
    expect(t.data[0]).toBe(Math.fround(0.1));
  });

  it('reads BOOL and INT64 values', () => {
    const b = decodeTensor({ shape: [3], datatype: 'BOOL', data: [true, false, true] }, 'p');
    expect(Array.from(b.data as Uint8Array)).toEqual([1, 0, 1]);
    const i = decodeTensor({ shape: [3], datatype: 'INT64', data: [2 ** 53 - 1, -(2 ** 53 - 1), 5] }, 'p');
    expect(Array.from(i.data as BigInt64Array)).toEqual([2n ** 53n - 1n, -(2n ** 53n - 1n), 5n]);
  });

  it('rejects a length that does not match the shape, naming the input', () => {
    const e = invalidTensor(() => decodeTensor({ shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5] }, 'inputs.x'));
    expect(e.errors).toEqual([{ path: 'inputs.x.data', message: expect.stringContaining('[2, 3]') }]);
    expect(e.detail).toContain('inputs.x');
    expect(e.detail).toContain('5');
  });

  it('rejects ragged nesting', () => {
    const e = invalidTensor(() => decodeTensor({ shape: [2, 2], data: [[1, 2], [3]] }, 'inputs.x'));
    expect(e.errors?.[0]?.path).toBe('inputs.x.data');
    expect(e.detail).toMatch(/ragged/);
    invalidTensor(() => decodeTensor([[1, 2], 3], 'inputs.x'));
    invalidTensor(() => decodeTensor([[1, 2], [3, [4]]], 'inputs.x'));
  });

  it('rejects unknown datatypes and bad shapes', () => {
    const e = invalidTensor(() => decodeTensor({ shape: [1], datatype: 'FP16', data: [1] }, 'inputs.x'));
    expect(e.errors?.[0]?.path).toBe('inputs.x.datatype');
    expect(e.detail).toContain('FP16');
    expect(invalidTensor(() => decodeTensor({ shape: [-1], data: [] }, 'inputs.x')).errors?.[0]?.path).toBe('inputs.x.shape');
    expect(invalidTensor(() => decodeTensor({ shape: [1.5], data: [1] }, 'inputs.x')).errors?.[0]?.path).toBe('inputs.x.shape');
    invalidTensor(() => decodeTensor({ shape: 'x', data: [1] }, 'inputs.x'));
  });

  it('rejects values not representable in the datatype', () => {
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'INT32', data: [1.5] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'INT32', data: [2 ** 31] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'INT64', data: [2 ** 53 + 2] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'INT32', data: ['NaN'] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'BOOL', data: [2] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'FP32', data: [1e39] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'FP64', data: [null] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'FP64', data: ['nan'] }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'FP64', data: [true] }, 'p'));
    // A JSON number past the FP64 range (1e999) parses as Infinity: refused like FP32's 1e39, the strings still work.
    const g = invalidTensor(() => decodeTensor(JSON.parse('{"shape": [2], "datatype": "FP64", "data": [1, -1e999]}'), 'p'));
    expect(g.message).toMatch(/element 1: a number beyond the FP64 range/);
    expect(Array.from(decodeTensor({ shape: [2], datatype: 'FP64', data: ['Infinity', '-Infinity'] }, 'p').data as Float64Array)).toEqual([Infinity, -Infinity]);
  });

  it('rejects missing or doubled payloads and non-tensors', () => {
    invalidTensor(() => decodeTensor({ shape: [1], datatype: 'FP32' }, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], data: [1], b64: 'AACAPw==' }, 'p'));
    invalidTensor(() => decodeTensor(null, 'p'));
    invalidTensor(() => decodeTensor({ shape: [1], data: { a: 1 } }, 'p'));
  });
});

describe('decodeTensor: b64', () => {
  it('decodes little-endian row-major bytes for every datatype', () => {
    const cases = [
      new Float32Array([1.5, -2, NaN, Infinity]),
      new Float64Array([Math.PI, -0, -Infinity, 1e300]),
      new Int32Array([1, -2, 2 ** 31 - 1, -(2 ** 31)]),
      new BigInt64Array([1n, -2n, 2n ** 62n, -(2n ** 63n)]),
      new Uint8Array([1, 0, 0, 1]),
    ];
    const dts = ['FP32', 'FP64', 'INT32', 'INT64', 'BOOL'];
    cases.forEach((arr, k) => {
      const t = decodeTensor({ shape: [2, 2], datatype: dts[k], b64: b64Of(arr) }, 'p');
      expect(t.shape).toEqual([2, 2]);
      expect(t.data.constructor).toBe(arr.constructor);
      expect(Array.from(t.data as ArrayLike<unknown>)).toEqual(Array.from(arr as ArrayLike<unknown>));
      expect(t.data.byteOffset % 8).toBe(0);
    });
  });

  it('rejects bad base64 and wrong byte counts', () => {
    const good = b64Of(new Float32Array([1, 2, 3]));
    expect(invalidTensor(() => decodeTensor({ shape: [3], datatype: 'FP32', b64: good.slice(0, -1) + '!' }, 'inputs.w')).errors?.[0]?.path).toBe('inputs.w.b64');
    const e = invalidTensor(() => decodeTensor({ shape: [4], datatype: 'FP32', b64: good }, 'inputs.w'));
    expect(e.detail).toMatch(/12 bytes.*16/);
    invalidTensor(() => decodeTensor({ shape: [3], datatype: 'FP32', b64: 'A' }, 'inputs.w'));
    invalidTensor(() => decodeTensor({ datatype: 'FP32', b64: good }, 'inputs.w'));
    invalidTensor(() => decodeTensor({ shape: [3], datatype: 'FP32', b64: 42 }, 'inputs.w'));
  });

  it('accepts base64 without padding', () => {
    const arr = new Float32Array([1, 2, 3, 4, 5]);
    const t = decodeTensor({ shape: [5], datatype: 'FP32', b64: b64Of(arr).replace(/=+$/, '') }, 'p');
    expect(Array.from(t.data as Float32Array)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('encodeTensor', () => {
  it('writes flat json with upper-case datatype and non-finite strings', () => {
    const t = tensor('FP64', [2, 2], [1, NaN, Infinity, -Infinity]);
    const w = encodeTensor(t, 'json');
    expect(w).toEqual({ shape: [2, 2], datatype: 'FP64', data: [1, 'NaN', 'Infinity', '-Infinity'] });
    expect(JSON.stringify(w)).not.toContain('null');
  });

  it('writes BOOL as booleans and INT64 as numbers', () => {
    expect(encodeTensor(tensor('BOOL', [2], [1, 0]), 'json').data).toEqual([true, false]);
    expect(encodeTensor(tensor('INT64', [2], [3n, -4n]), 'json').data).toEqual([3, -4]);
  });

  it('round-trips through b64 and json for random tensors', () => {
    fc.assert(
      fc.property(fc.array(fc.double(), { maxLength: 64 }), fc.constantFrom('json', 'b64') as fc.Arbitrary<'json' | 'b64'>, (vals, enc) => {
        const t = tensor('FP64', [vals.length], vals);
        const back = decodeTensor(JSON.parse(JSON.stringify(encodeTensor(t, enc))), 'p');
        expect(back.dtype).toBe('FP64');
        expect(back.shape).toEqual([vals.length]);
        // JSON has no negative zero, so -0 legitimately comes back as 0 in the json encoding.
        const norm = (a: Float64Array) => Array.from(a, (v) => (enc === 'json' && v === 0 ? 0 : v));
        expect(norm(back.data as Float64Array)).toEqual(norm(t.data as Float64Array));
      }),
    );
  });
});

describe('tensorFromBytes / tensorBytes', () => {
  it('copies raw little-endian bytes into an aligned tensor and back', async () => {
    const { tensorFromBytes, tensorBytes } = await import('../../src/tensor/wire.js');
    const src = new Float64Array([1.5, -2, NaN, 4]);
    const raw = Buffer.concat([Buffer.from([9]), Buffer.from(src.buffer)]).subarray(1); // deliberately misaligned
    const t = tensorFromBytes(raw, [2, 2], 'FP64', 'inputs[0]');
    expect(t.data.byteOffset % 8).toBe(0);
    expect(Array.from(t.data as Float64Array)).toEqual(Array.from(src));
    expect(Buffer.compare(tensorBytes(t), Buffer.from(src.buffer))).toBe(0);
    const b = tensorFromBytes(Buffer.from([0, 2, 1]), [3], 'BOOL', 'p');
    expect(Array.from(b.data as Uint8Array)).toEqual([0, 1, 1]);
    invalidTensor(() => tensorFromBytes(Buffer.alloc(7), [2], 'FP32', 'p'));
    invalidTensor(() => tensorFromBytes(Buffer.alloc(8), [2], 'BYTES', 'p'));
  });
});

describe('tensorFromBytes: views and copies (binary framing)', () => {
  it('views bytes in place when their offset suits the datatype, and copies them once otherwise', async () => {
    const { tensorFromBytes } = await import('../../src/tensor/wire.js');
    const body = new Uint8Array(64);
    new Float64Array(body.buffer, 8, 2).set([1.5, -2]);
    const view = tensorFromBytes(body.subarray(8, 24), [2], 'FP64', 'p', { view: true });
    expect(view.data.buffer).toBe(body.buffer);
    expect(Array.from(view.data as Float64Array)).toEqual([1.5, -2]);
    // Without the option, or at an offset a Float64Array cannot start at: a fresh array of its own.
    expect(tensorFromBytes(body.subarray(8, 24), [2], 'FP64', 'p').data.buffer).not.toBe(body.buffer);
    body.copyWithin(12, 8, 24);
    const copy = tensorFromBytes(body.subarray(12, 28), [2], 'FP64', 'p', { view: true });
    expect(copy.data.buffer).not.toBe(body.buffer);
    expect(copy.data.byteOffset).toBe(0);
    expect(Array.from(copy.data as Float64Array)).toEqual([1.5, -2]);
    // BOOL bytes are 0/1 afterwards, in place for a view; INT64 views as BigInt64Array.
    const bools = new Uint8Array([0, 7, 1]);
    expect(Array.from(tensorFromBytes(bools, [3], 'BOOL', 'p', { view: true }).data as Uint8Array)).toEqual([0, 1, 1]);
    expect(Array.from(bools)).toEqual([0, 1, 1]);
    const i64 = new BigInt64Array([2n ** 62n, -1n]);
    const t = tensorFromBytes(new Uint8Array(i64.buffer), [2], 'INT64', 'p', { view: true });
    expect(t.data).toBeInstanceOf(BigInt64Array);
    expect(t.data.buffer).toBe(i64.buffer);
    expect(invalidTensor(() => tensorFromBytes(new Uint8Array(4), [2], 'FP32', 'inputs.x', { sizeField: 'binary_data_size' })).errors?.[0]?.path).toBe('inputs.x.binary_data_size');
  });

  it('bindDecoded: decodeTensor hands back the tensor bound to a wire object', async () => {
    const { bindDecoded } = await import('../../src/tensor/wire.js');
    const wire = { shape: [2], datatype: 'FP32', binary_data_size: 8 };
    const t = tensor('FP32', [2], [1, 2]);
    bindDecoded(wire, t);
    expect(decodeTensor(wire, 'p')).toBe(t);
    expect(decodeTensor(wire, 'p', { dtype: 'FP64' })).toBe(t);
    invalidTensor(() => decodeTensor({ ...wire }, 'p'));
  });
});

describe('hostile nesting', () => {
  it('refuses absurdly deep nesting and rank with INVALID_TENSOR instead of overflowing the stack', () => {
    let deep: unknown = [1];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(invalidTensor(() => decodeTensor(deep, 'inputs.x')).detail).toMatch(/deeper than 64/);
    expect(invalidTensor(() => decodeTensor({ shape: new Array(65).fill(1), data: [1] }, 'inputs.x')).errors?.[0]?.path).toBe('inputs.x.shape');
  });
});

describe('INT64 beyond the exact range of JSON numbers', () => {
  it('refuses every INT64 JSON number that is not a safe integer, since JSON.parse may already have rounded it', () => {
    // 2^53 + 1 parses to 2^53: the only way to refuse it is to refuse 2^53 as well.
    const parsed = JSON.parse('{"shape":[1],"datatype":"INT64","data":[9007199254740993]}');
    const e = invalidTensor(() => decodeTensor(parsed, 'inputs.x'));
    expect(e.errors?.[0]?.path).toBe('inputs.x.data');
    expect(e.detail).toContain('inputs.x');
    expect(e.detail).toMatch(/b64/);
    for (const v of [2 ** 53, -(2 ** 53), -9007199254740993, 2 ** 60]) {
      invalidTensor(() => decodeTensor({ shape: [1], datatype: 'INT64', data: [v] }, 'p'));
    }
    // Shorthand declared INT64 (a bare scalar and a bare array) follows the same rule.
    expect(invalidTensor(() => decodeTensor(JSON.parse('[9007199254740993]'), 'inputs.x', { dtype: 'INT64' })).errors?.[0]?.path).toBe('inputs.x');
    invalidTensor(() => decodeTensor(JSON.parse('9007199254740993'), 'inputs.x', { dtype: 'INT64' }));
    // The safe edge and exact decimal strings still work.
    const ok = decodeTensor({ shape: [3], datatype: 'INT64', data: [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, '9007199254740993'] }, 'p');
    expect(Array.from(ok.data as BigInt64Array)).toEqual([2n ** 53n - 1n, -(2n ** 53n - 1n), 2n ** 53n + 1n]);
  });

  it('writes a json response tensor with values beyond the safe range as b64 (exact), others as numbers', () => {
    const big = tensor('INT64', [3], [2n ** 60n + 1n, -5n, 2n ** 53n - 1n]);
    const w = encodeTensor(big, 'json');
    expect(w.data).toBeUndefined();
    expect(w.datatype).toBe('INT64');
    const back = decodeTensor(JSON.parse(JSON.stringify(w)), 'p');
    expect(Array.from(back.data as BigInt64Array)).toEqual([2n ** 60n + 1n, -5n, 2n ** 53n - 1n]);
    expect(encodeTensor(tensor('INT64', [2], [2n ** 53n - 1n, -(2n ** 53n - 1n)]), 'json').data).toEqual([2 ** 53 - 1, -(2 ** 53 - 1)]);
  });

  it('with the string rule writes just the unsafe elements as exact decimal strings', () => {
    const w = encodeTensor(tensor('INT64', [3], [2n ** 53n, -(2n ** 63n), 7n]), 'json', 'string');
    expect(w.data).toEqual(['9007199254740992', '-9223372036854775808', 7]);
    const back = decodeTensor({ ...JSON.parse(JSON.stringify(w)) }, 'p');
    expect(Array.from(back.data as BigInt64Array)).toEqual([2n ** 53n, -(2n ** 63n), 7n]);
  });
});

describe('nesting against the declared shape', () => {
  it('refuses data nested deeper than the rank of its shape, while flat data fits any shape', () => {
    const e = invalidTensor(() => decodeTensor({ shape: [4], datatype: 'FP32', data: [[1, 2], [3, 4]] }, 'inputs.x'));
    expect(e.errors?.[0]?.path).toBe('inputs.x.data');
    expect(e.detail).toMatch(/nested 2 levels.*\[4\].*rank 1/);
    let deep: unknown = [1];
    for (let i = 0; i < 5000; i++) deep = [deep];
    expect(invalidTensor(() => decodeTensor({ shape: [1], datatype: 'FP32', data: deep }, 'inputs.x')).errors?.[0]?.path).toBe('inputs.x.data');
    invalidTensor(() => decodeTensor({ shape: [], datatype: 'FP32', data: [[5]] }, 'inputs.x'));
    expect(Array.from(decodeTensor({ shape: [], datatype: 'FP32', data: [5] }, 'p').data as Float32Array)).toEqual([5]);
    expect(Array.from(decodeTensor({ shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }, 'p').data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(decodeTensor({ shape: [1, 2, 2], datatype: 'FP32', data: [[1, 2], [3, 4]] }, 'p').shape).toEqual([1, 2, 2]);
  });
});
