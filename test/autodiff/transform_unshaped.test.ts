/**
 * /v1/transform on graphs whose inputs omit `datatype` (FP32, the wire default) or `shape` (any rank). The result
 * must be one graph that is right for every rank it is evaluated at; where a rule needs the rank, the error asks for
 * the input's shape and names the node.
 */
import { describe, expect, test } from 'vitest';
import { GradserveError, evaluate, tensor, transform } from '../../src/index.js';
import type { Graph, Tensor } from '../../src/index.js';
import { toNumbers } from './helpers.js';

const f32 = (shape: number[], data: number[]): Tensor => tensor('FP32', shape, data);

function square(inputs: Graph['inputs']): Graph {
  return { inputs, nodes: [{ name: 'y', op: 'mul', inputs: ['x', 'x'] }, { name: 's', op: 'sum', inputs: ['y'] }], outputs: ['s'] };
}

function rejects(f: () => unknown): GradserveError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GradserveError);
    return e as GradserveError;
  }
  throw new Error('expected a GradserveError');
}

describe('transform without declared datatype', () => {
  test('shape [3] and no datatype: FP32, grad:x = 2x', async () => {
    const g = transform(square({ x: { shape: [3] } }), { transform: 'grad', of: 's', wrt: ['x'] });
    expect(g.inputs!.x).toEqual({ shape: [3] });
    const r = await evaluate(g, { x: f32([3], [1, 2, 3]) });
    expect(r.outputs['grad:x']!.dtype).toBe('FP32');
    expect(toNumbers(r.outputs['grad:x']!)).toEqual([2, 4, 6]);
  });

  test('all-null dims and no datatype', async () => {
    const g = transform(square({ x: { shape: [null, null] } }), { transform: 'grad', of: 's', wrt: ['x'] });
    expect(toNumbers((await evaluate(g, { x: f32([1, 2], [3, 4]) })).outputs['grad:x']!)).toEqual([6, 8]);
  });
});

describe('transform without declared shape', () => {
  test('grad of sum(x * x) with x = {}: one graph for every rank, x still undeclared', async () => {
    const g = transform(square({ x: {} }), { transform: 'grad', of: 's', wrt: ['x'] });
    expect(g.inputs!.x).toEqual({});
    expect(g.outputs).toEqual(['grad:x']);
    for (const [shape, data] of [[[], [1.5]], [[3], [1, 2, 3]], [[2, 2], [1, -1, 2, -2]]] as [number[], number[]][]) {
      const r = await evaluate(g, { x: f32(shape, data) });
      expect(r.outputs['grad:x']!.shape, `${shape}`).toEqual(shape);
      expect(toNumbers(r.outputs['grad:x']!)).toEqual(data.map((v) => 2 * v));
    }
  });

  test('broadcasting against a shaped input: d/dx sum(x * w) = w broadcast, d/dw = x summed to [3]', async () => {
    const graph: Graph = {
      inputs: { x: {}, w: { shape: [3], datatype: 'FP32' } },
      nodes: [{ name: 'p', op: 'mul', inputs: ['x', 'w'] }, { name: 'e', op: 'exp', inputs: ['p'] }, { name: 's', op: 'sum', inputs: ['e'] }],
      outputs: ['s'],
    };
    const g = transform(graph, { transform: 'grad', of: 's', wrt: ['x', 'w'] });
    const w = f32([3], [0.1, 0.2, 0.3]);
    const cases: [number[], number[]][] = [[[], [2]], [[3], [1, 2, 3]], [[2, 3], [1, 2, 3, 4, 5, 6]], [[2, 1], [1, 2]]];
    for (const [shape, data] of cases) {
      const r = await evaluate(g, { x: f32(shape, data), w });
      // the product has rows of 3; element j of a row reads x at xAt(row, j)
      const rows = shape.length === 2 ? shape[0]! : 1;
      const xAt = (row: number, j: number): number => (shape.length === 0 ? data[0]! : shape[shape.length - 1] === 1 ? data[row]! : data[row * 3 + j]!);
      const gx = new Array<number>(data.length).fill(0);
      const gw = [0, 0, 0];
      for (let row = 0; row < rows; row++) {
        for (let j = 0; j < 3; j++) {
          const xv = xAt(row, j);
          const wj = w.data[j] as number;
          const ex = Math.exp(xv * wj);
          const at = shape.length === 0 ? 0 : shape[shape.length - 1] === 1 ? row : row * 3 + j;
          gx[at]! += wj * ex;
          gw[j]! += xv * ex;
        }
      }
      expect(r.outputs['grad:x']!.shape, `${shape}`).toEqual(shape);
      toNumbers(r.outputs['grad:x']!).forEach((v, i) => expect(v, `${shape} x[${i}]`).toBeCloseTo(gx[i]!, 4));
      toNumbers(r.outputs['grad:w']!).forEach((v, j) => expect(v, `${shape} w[${j}]`).toBeCloseTo(gw[j]!, 4));
    }
  });

  test('jvp and vjp: tangent and cotangent inputs of unknown rank are declared without shape', async () => {
    const graph: Graph = { inputs: { x: {} }, nodes: [{ name: 'y', op: 'sin', inputs: ['x'] }], outputs: ['y'] };
    const fwd = transform(graph, { transform: 'jvp', wrt: ['x'] });
    expect(fwd.inputs!['tangent:x']).toEqual({ datatype: 'FP32' });
    const t = await evaluate(fwd, { x: f32([2, 1], [0, 1]), 'tangent:x': f32([2, 1], [1, 2]) });
    expect(toNumbers(t.outputs['tangent:y']!)).toEqual([1, Math.fround(2 * Math.fround(Math.cos(1)))].map(Math.fround));
    const rev = transform(graph, { transform: 'vjp', of: ['y'], wrt: ['x'] });
    expect(rev.inputs!['cotangent:y']).toEqual({ datatype: 'FP32' });
    const v = await evaluate(rev, { x: f32([3], [0, 0, 0]), 'cotangent:y': f32([3], [1, 2, 3]) });
    expect(toNumbers(v.outputs['grad:x']!)).toEqual([1, 2, 3]);
  });

  test('transforms again: the Hessian-vector graph of sum(x^3) without shapes', async () => {
    const graph: Graph = {
      inputs: { x: {} },
      constants: { three: { shape: [], datatype: 'FP32', data: [3] } },
      nodes: [{ name: 'c', op: 'pow', inputs: ['x', 'three'] }, { name: 's', op: 'sum', inputs: ['c'] }],
      outputs: ['s'],
    };
    const rev = transform(graph, { transform: 'grad', of: 's', wrt: ['x'] });
    const hv = transform(rev, { transform: 'jvp', wrt: ['x'] });
    const r = await evaluate(hv, { x: f32([2], [1, 2]), 'tangent:x': f32([2], [1, 1]) });
    expect(toNumbers(r.outputs['tangent:grad:x']!)).toEqual([6, 12]);
  });

  test('whole-tensor mean, max, logsumexp and mse: grad graphs right at ranks 1 and 2', async () => {
    const one = (op: string, attrs?: Record<string, unknown>, extra: string[] = []): Graph => ({
      inputs: { x: { datatype: 'FP64' } },
      constants: { half: { shape: [], datatype: 'FP64', data: [0.5] } },
      nodes: [{ name: 's', op, inputs: ['x', ...extra], ...(attrs ? { attrs } : {}) }],
      outputs: ['s'],
    });
    const cases: [string, Graph, (x: number[]) => number[]][] = [
      ['mean', one('mean'), (x) => x.map(() => 1 / x.length)],
      ['max', one('max'), (x) => x.map((v) => (v === Math.max(...x) ? 1 : 0))],
      ['logsumexp', one('logsumexp'), (x) => { const z = x.reduce((a, v) => a + Math.exp(v), 0); return x.map((v) => Math.exp(v) / z); }],
      ['mse', one('mse', undefined, ['half']), (x) => x.map((v) => (2 * (v - 0.5)) / x.length)],
      ['sum keepdims', one('sum', { axes: null, keepdims: true }), (x) => x.map(() => 1)],
    ];
    for (const [name, graph, want] of cases) {
      const g = transform(graph, { transform: 'grad', of: 's', wrt: ['x'] });
      expect(g.inputs!.x, name).toEqual({ datatype: 'FP64' });
      for (const shape of [[4], [2, 2]]) {
        const data = [0.3, -1.2, 1.7, 0.9];
        const r = await evaluate(g, { x: tensor('FP64', shape, data) });
        expect(r.outputs['grad:x']!.shape, `${name} ${shape}`).toEqual(shape);
        toNumbers(r.outputs['grad:x']!).forEach((v, i) => expect(v, `${name} ${shape} [${i}]`).toBeCloseTo(want(data)[i]!, 12));
      }
    }
  });

  test('a rule that needs the rank: SHAPE_MISMATCH at graph.inputs.<name>, naming op and node', () => {
    const cases: [Graph['nodes'], string][] = [
      [[{ name: 'm', op: 'matmul', inputs: ['x', 'x'] }, { name: 's', op: 'sum', inputs: ['m'] }], 'matmul node "m"'],
      [[{ name: 'e', op: 'exp', inputs: ['x'] }, { name: 'r', op: 'sum', inputs: ['e'], attrs: { axes: [0] } }, { name: 's', op: 'sum', inputs: ['r'] }], 'sum node "r"'],
      [[{ name: 'p', op: 'softmax', inputs: ['x'] }, { name: 's', op: 'sum', inputs: ['p'] }], 'softmax node "p"'],
    ];
    for (const [nodes, where] of cases) {
      const graph: Graph = { inputs: { w: { shape: [2], datatype: 'FP32' }, x: { datatype: 'FP32' } }, nodes, outputs: ['s'] };
      const e = rejects(() => transform(graph, { transform: 'grad', of: 's', wrt: ['x'] }));
      expect(e.code, where).toBe('SHAPE_MISMATCH');
      expect(e.message).toBe(`input "x" declares no shape; declare its shape (null for unknown sizes) to transform through ${where}`);
      expect(e.errors?.[0]?.path).toBe('graph.inputs.x');
    }
  });

  test('errors that do not depend on the rank are reported as they are', () => {
    const e = rejects(() => transform(square({ x: {} }), { transform: 'grad', of: 's', wrt: ['nope'] }));
    expect(e.code).toBe('UNKNOWN_VALUE');
    expect(e.errors?.[0]?.path).toBe('wrt[0]');
    const i = rejects(() => transform(square({ x: { datatype: 'INT32' } }), { transform: 'grad', of: 's', wrt: ['x'] }));
    expect(i.code).toBe('NOT_DIFFERENTIABLE');
  });
});
