/**
 * The canonical graph text behind plan-cache keys (src/graph/hash.ts), rewritten for the request hot path: it must
 * stay byte-for-byte what the fragment-list version produced, or cached plans and derivative graphs would be keyed
 * differently for the same graph.
 */
import { describe, expect, it } from 'vitest';
import { hashGraph, stableStringify } from '../../src/graph/hash.js';

/** The previous implementation, kept here as the reference. */
function reference(v: unknown): string {
  const out: string[] = [];
  const canonical = (x: unknown): void => {
    if (x === null || typeof x !== 'object') {
      out.push(JSON.stringify(x) ?? 'null');
      return;
    }
    if (Array.isArray(x)) {
      out.push('[');
      for (let i = 0; i < x.length; i++) {
        if (i > 0) out.push(',');
        canonical(x[i]);
      }
      out.push(']');
      return;
    }
    const obj = x as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    out.push('{');
    keys.forEach((k, i) => {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(k), ':');
      canonical(obj[k]);
    });
    out.push('}');
  };
  canonical(v);
  return out.join('');
}

describe('stableStringify', () => {
  it('matches the reference on graphs and odd values', () => {
    const values: unknown[] = [
      { nodes: [{ name: 'y', op: 'neg', inputs: ['x'], attrs: { axes: [0, -1], keepdims: true } }], inputs: { x: { shape: [2, null], datatype: 'FP32' } }, outputs: ['y'] },
      { z: 1, a: undefined, m: [undefined, null, 1.5e-300, -0, 'q"uote\\', { '\u00e9': 'ü', '': [] }], b: { d: { c: 'x\ny' } } },
      { constants: { w: { shape: [3], datatype: 'FP32', data: [1, 'NaN', '-Infinity'] } }, nodes: [] },
      [], {}, 'str', 12, true, null, undefined,
      { 10: 'a', 9: 'b', '01': 'c', B: 1, a: 2 },
    ];
    for (const v of values) expect(stableStringify(v)).toBe(reference(v));
  });

  it('is independent of key order, and the hash follows it', () => {
    const a = { nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }], inputs: { x: { shape: [2], datatype: 'FP32' } } };
    const b = { inputs: { x: { datatype: 'FP32', shape: [2] } }, nodes: [{ inputs: ['x'], op: 'neg', name: 'y' }] };
    expect(stableStringify(a)).toBe(stableStringify(b));
    expect(hashGraph(a)).toBe(hashGraph(b));
    expect(hashGraph(a)).not.toBe(hashGraph({ ...a, outputs: ['y'] }));
  });
});
