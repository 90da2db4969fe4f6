/** Cache keys and the bounded LRU behind the plan and derivative caches. */
import { describe, expect, test } from 'vitest';
import { LruCache, hashGraph, stableStringify, tensorsSignature } from '../../src/graph/hash.js';
import { tensor } from '../../src/tensor/tensor.js';
import { compileGraph, constantBytes } from '../../src/graph/validate.js';
import type { Graph, NodeSpec } from '../../src/graph/types.js';

describe('graph hash', () => {
  test('independent of object key order, sensitive to content', () => {
    const a = { nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }], inputs: { x: { shape: [2], datatype: 'FP32' } } };
    const b = { inputs: { x: { datatype: 'FP32', shape: [2] } }, nodes: [{ inputs: ['x'], op: 'neg', name: 'y' }] };
    expect(hashGraph(a)).toBe(hashGraph(b));
    expect(hashGraph({ ...a, nodes: [{ name: 'y', op: 'exp', inputs: ['x'] }] })).not.toBe(hashGraph(a));
    expect(stableStringify({ b: 1, a: [1, { d: 2, c: undefined }] })).toBe('{"a":[1,{"d":2}],"b":1}');
  });

  test('a small graph is keyed by its canonical text, a large one by its sha256', () => {
    const small = { nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }], inputs: { x: { shape: [2], datatype: 'FP32' } } };
    expect(hashGraph(small)).toBe(`=${stableStringify(small)}`);
    const big = { ...small, constants: { c: { shape: [2000], datatype: 'FP32', data: new Array<number>(2000).fill(1.5) } } };
    const h = hashGraph(big);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(hashGraph({ ...big, constants: { c: { ...big.constants.c, data: [...big.constants.c.data.slice(1), 2] } } })).not.toBe(h);
    // the text form is a whole JSON value, so a key built as `${hash}|...` cannot be read two ways
    const tricky = { nodes: [{ name: 'y|z', op: 'neg', inputs: ['x'] }], inputs: { x: { shape: [2], datatype: 'FP32' } } };
    expect(JSON.parse(hashGraph(tricky).slice(1))).toEqual(tricky);
  });

  test('input signature covers names, datatypes and shapes', () => {
    const s1 = tensorsSignature({ x: tensor('FP32', [2, 3]), w: tensor('FP64', [3]) });
    expect(tensorsSignature({ w: tensor('FP64', [3]), x: tensor('FP32', [2, 3]) })).toBe(s1);
    expect(tensorsSignature({ x: tensor('FP32', [3, 2]), w: tensor('FP64', [3]) })).not.toBe(s1);
    expect(tensorsSignature({ x: tensor('FP64', [2, 3]), w: tensor('FP64', [3]) })).not.toBe(s1);
  });
});

describe('LruCache', () => {
  test('evicts the least recently used beyond its capacity', () => {
    const c = new LruCache<number>(2);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1);
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.get('c')).toBe(3);
    expect(c.size).toBe(2);
    expect(c.hits).toBe(3);
    expect(c.misses).toBe(1);
  });

  test('evicts by weight but always keeps the newest entry', () => {
    const c = new LruCache<number>(100, 10, (v) => v);
    c.set('a', 4);
    c.set('b', 4);
    c.set('c', 4);
    expect(c.get('a')).toBeUndefined();
    expect(c.size).toBe(2);
    c.set('huge', 50);
    expect(c.size).toBe(1);
    expect(c.get('huge')).toBe(50);
    c.set('huge', 1);
    c.set('d', 2);
    expect(c.size).toBe(2);
  });
});

describe('frozen graphs', () => {
  test('are hashed once by identity; unfrozen graphs are hashed on every call', async () => {
    const { graphHash } = await import('../../src/graph/plan.js');
    const g = { inputs: { x: { shape: [2], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'neg', inputs: ['x'] }] };
    const h = graphHash(g);
    g.nodes[0]!.op = 'exp';
    expect(graphHash(g)).not.toBe(h);
    const nodes: NodeSpec[] = [Object.freeze({ ...g.nodes[0]! })];
    Object.freeze(nodes); // in place: the array stays typed NodeSpec[] as Graph asks, and is frozen all the same
    const frozen: Graph = Object.freeze({ ...g, nodes });
    expect(graphHash(frozen)).toBe(graphHash(g));
    expect(graphHash(frozen)).toBe(hashGraph(g));
  });
});

describe('cache weights', () => {
  test('a compiled graph weighs its decoded constants plus the wire form it keeps (b64 text, data numbers)', () => {
    const w = new Float32Array(4096).fill(0.5);
    const b64 = Buffer.from(w.buffer).toString('base64');
    const c = compileGraph({
      inputs: { x: { shape: [4096], datatype: 'FP32' } },
      constants: { w: { shape: [4096], datatype: 'FP32', b64 }, k: { shape: [2, 2], datatype: 'FP64', data: [[1, 2], [3, 4]] } },
      nodes: [{ name: 'y', op: 'mul', inputs: ['x', 'w'] }, { name: 'z', op: 'sum', inputs: ['k'] }],
      outputs: ['y', 'z'],
    });
    expect(b64.length).toBe(21848);
    expect(constantBytes(c)).toBe(4096 * 4 + 4 * 8 + b64.length + 4 * 8);
  });
});
