/** Body parsing and request-path formatting. */
import { describe, expect, it } from 'vitest';
import { GradserveError } from '../../src/errors.js';
import { formatPath, parseJsonText } from '../../src/server/body.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GradserveError);
    return (e as GradserveError).code;
  }
  return 'none';
}

describe('parseJsonText', () => {
  it('parses strings and bytes alike, large bodies included', () => {
    const xs = Array.from({ length: 100_000 }, (_, i) => Math.sin(i));
    const text = JSON.stringify({ inputs: { x: { shape: [xs.length], data: xs } } });
    expect(parseJsonText(text)).toStrictEqual(JSON.parse(text));
    expect(parseJsonText(Buffer.from(text))).toStrictEqual(JSON.parse(text));
    expect(parseJsonText(Buffer.from('{"ü": "€"}'))).toEqual({ 'ü': '€' });
  });

  it('rejects empty, blank, invalid and non-finite-token bodies as INVALID_JSON', () => {
    expect(code(() => parseJsonText(''))).toBe('INVALID_JSON');
    expect(code(() => parseJsonText(Buffer.from(' \n\t')))).toBe('INVALID_JSON');
    expect(code(() => parseJsonText('{"a": '))).toBe('INVALID_JSON');
    expect(code(() => parseJsonText('{"a": -Infinity}'))).toBe('INVALID_JSON');
    try {
      parseJsonText('{"a": [1, NaN]}');
    } catch (e) {
      expect((e as GradserveError).detail).toMatch(/"NaN", "Infinity", "-Infinity"/);
    }
  });

  it('rejects prototype poisoning but not innocent mentions', () => {
    expect(code(() => parseJsonText('{"a": {"__proto__": {"x": 1}}}'))).toBe('INVALID_JSON');
    expect(code(() => parseJsonText('{"a": [{"constructor": {"prototype": {"x": 1}}}]}'))).toBe('INVALID_JSON');
    expect(parseJsonText('{"name": "__proto__ and prototype are fine as values"}')).toEqual({ name: '__proto__ and prototype are fine as values' });
    expect(parseJsonText('{"constructor": 1}')).toEqual({ constructor: 1 });
  });

  it('rejects a __proto__ key spelled with escapes, which no substring search sees', () => {
    expect(code(() => parseJsonText('{"a": {"\\u005f_proto__": {"x": 1}}}'))).toBe('INVALID_JSON');
    expect(code(() => parseJsonText('{"a": {"constructor": {"prot\\u006ftype": {"x": 1}}}}'))).toBe('INVALID_JSON');
    expect(parseJsonText('{"name": "caf\\u00e9"}')).toEqual({ name: 'café' });
  });

  it('checks the keys of large bodies whose base64 strings were cut out before parsing', () => {
    const big = 'QUJD'.repeat(1 << 18); // 1 MiB of base64, so the body takes the large-body path
    const tensorJson = `{"shape": [786432], "datatype": "BOOL", "b64": "${big}"}`;
    expect(code(() => parseJsonText(Buffer.from(`{"inputs": {"x": ${tensorJson}}, "a": {"__proto__": {"x": 1}}}`)))).toBe('INVALID_JSON');
    expect(code(() => parseJsonText(Buffer.from(`{"inputs": {"x": ${tensorJson}}, "a": {"\\u005f_proto__": 1}}`)))).toBe('INVALID_JSON');
    const ok = parseJsonText(Buffer.from(`{"inputs": {"x": ${tensorJson}}, "note": "prototype"}`)) as { inputs: { x: { b64: string } }; note: string };
    expect(ok.inputs.x.b64).toBe(big);
    expect(ok.note).toBe('prototype');
  });
});

describe('formatPath', () => {
  it('writes object keys with dots and array indices in brackets', () => {
    expect(formatPath(['graph', 'nodes', 2, 'inputs', 1])).toBe('graph.nodes[2].inputs[1]');
    expect(formatPath(['inputs', 'x', 'data'])).toBe('inputs.x.data');
    expect(formatPath([0, 'a'])).toBe('[0].a');
    expect(formatPath([])).toBe('');
  });
});

describe('nesting depth', () => {
  it('refuses bodies nested deeper than any request needs, before recursive code sees them', () => {
    const deep = `{"graph": {"nodes": [{"name": "a", "op": "neg", "inputs": ["x"], "attrs": {"k": ${'['.repeat(5000)}${']'.repeat(5000)}}}]}}`;
    expect(code(() => parseJsonText(deep))).toBe('INVALID_REQUEST');
    const rank64 = `{"x": ${'['.repeat(64)}1${']'.repeat(64)}}`;
    expect(code(() => parseJsonText(rank64))).toBe('none');
    expect(code(() => parseJsonText(`{"x": [1, 2, ${'['.repeat(500)}${']'.repeat(500)}]}`))).toBe('INVALID_REQUEST');
  });

  it('names the tensor when the over-deep part is tensor data', () => {
    const err = (text: string): GradserveError => {
      try {
        parseJsonText(text);
      } catch (e) {
        return e as GradserveError;
      }
      throw new Error('expected an error');
    };
    const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
    const data = err(`{"inputs": {"x": {"shape": [1], "datatype": "FP32", "data": ${deep(5000)}}}}`);
    expect(data.code).toBe('INVALID_TENSOR');
    expect(data.errors).toEqual([{ path: 'inputs.x.data', message: expect.stringMatching(/deeper than 64/) }]);
    expect(data.detail).toContain('inputs.x');
    const shorthand = err(`{"graph": {}, "inputs": {"x": ${deep(100_000)}}}`);
    expect(shorthand.code).toBe('INVALID_TENSOR');
    expect(shorthand.errors?.[0]?.path).toBe('inputs.x');
    expect(err(`{"graph": {"constants": {"c": {"data": ${deep(300)}}}}}`).errors?.[0]?.path).toBe('graph.constants.c.data');
    expect(err(`{"inputs": [{"name": "x", "data": ${deep(300)}}]}`).errors?.[0]?.path).toBe('inputs[0].data');
    // Deep nesting outside tensor fields stays a schema problem.
    expect(err(`{"graph": {"nodes": [{"attrs": {"k": ${deep(300)}}}]}}`).code).toBe('INVALID_REQUEST');
  });
});
