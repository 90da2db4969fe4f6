/** The byte-level pass that refuses unrepresentable JSON before JSON.parse builds it (src/server/json_prescan.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GradserveError } from '../../src/errors.js';
import { depthErrorAt, parseJsonText } from '../../src/server/body.js';
import { MAX_OTHER_VALUES, prescanJson, STRUCTURE_ALLOWANCE, type PrescanLimits } from '../../src/server/json_prescan.js';

const limits: PrescanLimits = { maxTensorElements: 2 ** 28, heapBudget: Infinity };

function refusal(text: string | Buffer, l: PrescanLimits = limits): GradserveError {
  try {
    prescanJson(Buffer.from(text), l);
  } catch (e) {
    expect(e).toBeInstanceOf(GradserveError);
    return e as GradserveError;
  }
  throw new Error('expected a refusal');
}

function errorOf(fn: () => unknown): GradserveError {
  try {
    fn();
  } catch (e) {
    return e as GradserveError;
  }
  throw new Error('expected an error');
}

/** Arrays+objects and scalar values of a parsed JSON value. */
function counts(v: unknown): { containers: number; scalars: number } {
  if (typeof v !== 'object' || v === null) return { containers: 0, scalars: 1 };
  const kids = Array.isArray(v) ? v : Object.values(v);
  return kids.map(counts).reduce((a, b) => ({ containers: a.containers + b.containers, scalars: a.scalars + b.scalars }), { containers: 1, scalars: 0 });
}

describe('prescanJson', () => {
  it('counts the arrays, objects and values JSON.parse will build', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v, null, Math.random() < 0.5 ? 1 : undefined);
        const stats = prescanJson(Buffer.from(text), limits);
        expect({ containers: stats.containers, scalars: stats.scalars }).toEqual(counts(JSON.parse(text)));
        expect(stats.heapBytes).toBeGreaterThanOrEqual(2 * Buffer.byteLength(text));
      }),
      { numRuns: 300, seed: 5 },
    );
  });

  it('never fails on bytes that are not JSON (JSON.parse reports those)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array().map((a) => Buffer.from(a).toString('latin1')), fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1))), (s) => {
        expect(() => prescanJson(Buffer.from(s, 'latin1'), limits)).not.toThrow();
      }),
      { numRuns: 500, seed: 6 },
    );
  });

  it('refuses a tensor array longer than the per-tensor limit, naming it', () => {
    const small = { maxTensorElements: 100, heapBudget: Infinity };
    const zeros = (n: number): string => `[${new Array(n).fill(0).join(',')}]`;
    const shorthand = refusal(`{"graph": {}, "inputs": {"x": ${zeros(101)}}}`, small);
    expect(shorthand.code).toBe('TOO_LARGE');
    expect(shorthand.status).toBe(413);
    expect(shorthand.errors).toEqual([{ path: 'inputs.x', message: 'an array of more than 100 elements is over the limit of 100 per tensor (GRADSERVE_MAX_TENSOR_ELEMENTS)' }]);
    expect(shorthand.detail).toBe(`inputs.x: ${shorthand.errors![0]!.message}`);
    expect(refusal(`{"inputs": {"x": {"shape": [101], "data": ${zeros(101)}}}}`, small).errors?.[0]?.path).toBe('inputs.x.data');
    expect(refusal(`{"cotangents": {"y": [[1], ${zeros(101)}]}}`, small).errors?.[0]?.path).toBe('cotangents.y[1]');
    expect(refusal(`{"graph": {"constants": {"c": {"data": ${zeros(101)}}}}}`, small).errors?.[0]?.path).toBe('graph.constants.c.data');
    expect(refusal(`{"inputs": [{"name": "x", "data": ${zeros(101)}}]}`, small).errors?.[0]?.path).toBe('inputs[0].data');
    // Keys spelled with escapes are still recognized, and named as they read.
    expect(refusal(`{"in\\u0070uts": {"a\\"b": ${zeros(101)}}}`, small).errors?.[0]?.path).toBe('inputs.a"b');
    // Rows each within the limit, but a tensor over it, nested rows and all.
    const rows = `[${new Array(60).fill(zeros(50)).join(',')}]`;
    const total = refusal(`{"inputs": {"w": [1], "x": {"shape": [60, 50], "data": ${rows}}}}`, { maxTensorElements: 1000, heapBudget: Infinity });
    expect(total.errors).toEqual([{ path: 'inputs.x', message: 'a tensor of more than 1000 values is over the limit of 1000 per tensor (GRADSERVE_MAX_TENSOR_ELEMENTS)' }]);
    expect(refusal(`{"graph": {"constants": {"c": ${rows}}}}`, { maxTensorElements: 1000, heapBudget: Infinity }).errors?.[0]?.path).toBe('graph.constants.c');
    expect(() => prescanJson(Buffer.from(`{"inputs": {"x": ${rows}, "y": ${rows}}}`), { maxTensorElements: 3000, heapBudget: Infinity })).not.toThrow();
    // Exactly at the limit, and arrays outside tensor fields (graph.nodes, lists of names), are fine.
    expect(() => prescanJson(Buffer.from(`{"inputs": {"x": ${zeros(100)}}}`), small)).not.toThrow();
    expect(() => prescanJson(Buffer.from(`{"graph": {"nodes": ${zeros(500)}}, "wrt": ${zeros(500)}}`), small)).not.toThrow();
  });

  it('refuses more values outside tensor fields than any graph has', () => {
    const e = refusal(`{"graph": {"nodes": []}, "junk": [${'0,'.repeat(MAX_OTHER_VALUES)}0]}`);
    expect(e.code).toBe('TOO_LARGE');
    expect(e.errors).toEqual([{ path: 'junk', message: expect.stringMatching(/more than 4194304 values outside its tensors/) }]);
    expect(() => prescanJson(Buffer.from(`{"inputs": {"x": [${'0,'.repeat(MAX_OTHER_VALUES)}0]}}`), limits)).not.toThrow();
  });

  it('refuses structure without data: many empty arrays, wherever they are', () => {
    const empties = (n: number): string => `[${'[],'.repeat(n - 1)}[]]`;
    const e = refusal(`{"graph": {}, "inputs": {"x": ${empties(STRUCTURE_ALLOWANCE + 10)}}}`);
    expect(e.code).toBe('TOO_LARGE');
    expect(e.detail).toMatch(/^the body has 1048590 arrays and objects for 0 values/);
    expect(refusal(`[${'{},'.repeat(STRUCTURE_ALLOWANCE + 10)}{}]`).code).toBe('TOO_LARGE');
    // As many one-element rows as values is structure with data: accepted.
    expect(prescanJson(Buffer.from(`{"x": [${'[0],'.repeat(STRUCTURE_ALLOWANCE + 10)}[0]]}`), limits).containers).toBe(STRUCTURE_ALLOWANCE + 13);
  });

  it('refuses nesting deeper than it follows with the error the parse would give', () => {
    const depth = 2 ** 20 + 5;
    for (const text of [
      `{"graph": {}, "inputs": {"x": ${'['.repeat(depth)}1${']'.repeat(depth)}}}`,
      `{"graph": {"nodes": [{"attrs": {"k": ${'['.repeat(depth)}${']'.repeat(depth)}}}]}}`,
      `${'[{"a":'.repeat(depth / 2)}1`,
    ]) {
      const e = refusal(text, { ...limits, tooDeep: depthErrorAt });
      // The parse's own error: JSON.parse builds it all, then the depth check finds the path.
      const sync = errorOf(() => parseJsonText(text.endsWith('1') ? `${text}${'}]'.repeat(depth / 2)}` : text, false));
      expect({ code: e.code, detail: e.detail, errors: e.errors }).toEqual({ code: sync.code, detail: sync.detail, errors: sync.errors });
    }
  });

  it('guards parseJsonText itself from a size up (the framed JSON part is parsed on the event loop)', () => {
    const text = `{"graph": {}, "inputs": {"x": [${'0,'.repeat(600_000)}0]}}`;
    const e = errorOf(() => parseJsonText(Buffer.from(text), { maxTensorElements: 1000 }));
    expect(e.code).toBe('TOO_LARGE');
    expect(e.errors?.[0]?.path).toBe('inputs.x');
    // Under BIG_BODY_BYTES, or as a string, no scan: the limits are those of the parse and of the routes.
    expect(() => parseJsonText(text, { maxTensorElements: 1000 })).not.toThrow();
    expect(() => parseJsonText(Buffer.from(text))).not.toThrow();
  });

  it('refuses a body whose parsed form would not fit the heap budget', () => {
    const text = JSON.stringify({ inputs: { x: Array.from({ length: 10_000 }, (_, i) => i + 0.5) } });
    const stats = prescanJson(Buffer.from(text), limits);
    // Every fractional number may be a heap number until its array is packed: 8 + 16 bytes each.
    expect(stats.heapBytes).toBeGreaterThan(2 * text.length + 10_000 * 24);
    const e = refusal(text, { maxTensorElements: 2 ** 28, heapBudget: stats.heapBytes - 1 });
    expect(e.code).toBe('TOO_LARGE');
    expect(e.detail).toMatch(/parsing this body would take about .* of memory, over the .* a parse may use/);
  });
});
