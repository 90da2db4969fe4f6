/** Large-body JSON: identical results to JSON.parse / JSON.stringify, with the big b64 strings handled as bytes. */
import { describe, expect, it } from 'vitest';
import { kernels } from '../../src/kernels.js';
import { parseBigJson, RawB64, stringifyBig } from '../../src/server/bigjson.js';
import { encodeTensor } from '../../src/tensor/wire.js';
import { tensor } from '../../src/tensor/tensor.js';

const b64 = (n: number, seed = 1) => Buffer.from(Float32Array.from({ length: n }, (_, i) => Math.sin(i * seed)).buffer).toString('base64');

describe('parseBigJson', () => {
  it('equals JSON.parse on bodies with large b64 strings, wherever they sit', () => {
    const body = {
      graph: { nodes: [{ name: 'b64', op: 'neg', inputs: ['x'] }], constants: { c: { shape: [5000], datatype: 'FP32', b64: b64(5000, 3) } } },
      inputs: { x: { shape: [20000], datatype: 'FP32', b64: b64(20000) }, y: { b64: 'short' }, 'ü': { data: [1, 2] } },
      note: 'a string with "b64": inside it',
      list: [{ b64: b64(3000, 2) }],
    };
    for (const text of [JSON.stringify(body), JSON.stringify(body, null, 2)]) {
      expect(parseBigJson(Buffer.from(text))).toStrictEqual(JSON.parse(text));
    }
  });

  it('leaves escaped look-alikes and escaped strings to JSON.parse', () => {
    const long = 'A'.repeat(5000);
    const cases = [
      `{"x\\"b64": "${long}"}`,
      `{"k": "\\"b64\\": \\"${long}\\""}`,
      `{"b64": "${long}\\n${long}"}`,
      `{"b64" : \n "${long}", "b": {"b64":"${long}"}}`,
      `{"b64": ["${long}"]}`,
    ];
    for (const text of cases) expect(parseBigJson(Buffer.from(text)), text.slice(0, 20)).toStrictEqual(JSON.parse(text));
  });

  it('lifts an escape-free string even when a later string has escapes', () => {
    const text = `{"a": {"b64": "${b64(4000)}"}, "b": {"b64": "${'B'.repeat(5000)}\\u0041"}, "c": {"b64": "${b64(3000, 5)}"}}`;
    expect(parseBigJson(Buffer.from(text))).toStrictEqual(JSON.parse(text));
  });

  it('throws SyntaxError for invalid JSON around lifted strings', () => {
    const long = 'A'.repeat(5000);
    for (const bad of [`{"b64": "${long}"`, `{"b64": "${long}" "x": 1}`, `{"b64": "${long}`, `{"a": NaN, "b64": "${long}"}`]) {
      expect(() => parseBigJson(Buffer.from(bad))).toThrow(SyntaxError);
    }
  });
});

describe('stringifyBig', () => {
  it('produces the bytes of JSON.stringify, as a Buffer when it spliced encoded tensors', () => {
    const big = encodeTensor(tensor('FP32', [4000], Float32Array.from({ length: 4000 }, (_, i) => i)), 'b64');
    const small = encodeTensor(tensor('FP64', [2], [1, NaN]), 'json');
    const v = { outputs: { y: big, z: small, w: encodeTensor(tensor('INT32', [3000], new Int32Array(3000).fill(-7)), 'b64') }, note: 'é "quoted"' };
    const out = stringifyBig(v);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.toString('utf8')).toBe(JSON.stringify(v));
    // The value is left untouched.
    expect(v.outputs.y.b64).toBe(big.b64);
  });

  it('writes RawB64 values natively, byte for byte what JSON.stringify writes for their strings', () => {
    const enc = kernels.encodeBase64!;
    for (const n of [0, 1, 2, 3, 1024, 4001, 60_000]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) & 0xff);
      const f = new Float32Array(8).fill(0.25);
      const raw = new RawB64(bytes, enc);
      const v = { gradients: { w: { shape: [n], datatype: 'BOOL', b64: raw }, 'q"': { b64: new RawB64(f.subarray(2, 5), enc) } }, note: 'é' };
      const plain = { gradients: { w: { shape: [n], datatype: 'BOOL', b64: Buffer.from(bytes).toString('base64') }, 'q"': { b64: Buffer.from(f.buffer, 8, 12).toString('base64') } }, note: 'é' };
      const out = stringifyBig(v);
      expect(Buffer.isBuffer(out)).toBe(true);
      expect(out.toString()).toBe(JSON.stringify(plain));
      // Serialized any other way, it is its string.
      expect(JSON.stringify(v)).toBe(JSON.stringify(plain));
      expect(raw.placeholder).toBeUndefined();
    }
  });

  it('escapes b64 strings it did not make', () => {
    const v = { graph: { constants: { c: { b64: `${'A'.repeat(5000)}"\\\n` } } } };
    const out = stringifyBig(v);
    expect(typeof out === 'string' ? out : out.toString('utf8')).toBe(JSON.stringify(v));
    expect(JSON.parse(String(out))).toStrictEqual(v);
  });
});

describe('natively written number arrays', () => {
  it('ResponseTensors in json gives the bytes JSON.stringify gives, next to b64 strings and at any position', async () => {
    const { ResponseTensors } = await import('../../src/server/tensors.js');
    const w = new ResponseTensors('json');
    const big = tensor('FP32', [3000], Float32Array.from({ length: 3000 }, (_, i) => Math.sin(i) * 10 ** ((i % 13) - 6)));
    const odd = tensor('FP64', [40], Float64Array.from({ length: 40 }, (_, i) => (i % 5 === 0 ? Number.NaN : i % 7 === 0 ? -Infinity : 1 / (i - 20))));
    const small = tensor('FP32', [2], Float32Array.of(0.1, -2));
    const body = { outputs: w.map({ big, odd, small }), gradients: { 'x"y': w.tensor(big) }, b: encodeTensor(tensor('FP32', [2000], new Float32Array(2000).fill(0.5)), 'b64') };
    const plain = JSON.stringify({
      outputs: { big: encodeTensor(big, 'json'), odd: encodeTensor(odd, 'json'), small: encodeTensor(small, 'json') },
      gradients: { 'x"y': encodeTensor(big, 'json') },
      b: body.b,
    });
    const out = stringifyBig(body);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.toString()).toBe(plain);
    // Serialized by anything else, the arrays are still plain numbers.
    expect(JSON.stringify(body)).toBe(plain);
  });
});
