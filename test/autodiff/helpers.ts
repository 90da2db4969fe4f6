/**
 * Shared by the derivative tests: a seeded generator of small random differentiable graphs, FP64 tensors, basis
 * vectors, and comparisons that report the worst element.
 */
import { expect } from 'vitest';
import type { Graph, NodeSpec } from '../../src/graph/types.js';
import { broadcastShapes } from '../../src/tensor/shape.js';
import { numel, tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';

export function randTensor(r: () => number, shape: number[], lo = -1.5, hi = 1.5, dtype: 'FP64' | 'FP32' = 'FP64'): Tensor {
  return tensor(dtype, shape, Array.from({ length: numel(shape) }, () => lo + (hi - lo) * r()));
}

export function basis(shape: readonly number[], i: number, dtype: 'FP64' | 'FP32' = 'FP64'): Tensor {
  const t = tensor(dtype, shape);
  (t.data as Float64Array)[i] = 1;
  return t;
}

/** max |a - b| over elements, with shapes required equal. */
export function maxDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(Number(a.data[i]) - Number(b.data[i]));
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

export function expectClose(a: Tensor, b: Tensor, tol: number): void {
  expect(maxDiff(a, b)).toBeLessThanOrEqual(tol);
}

interface Val { name: string; shape: number[] }

export interface RandomProblem {
  graph: Graph;
  inputs: Record<string, Tensor>;
  of: string[];
  wrt: string[];
}

/**
 * A random graph over three FP64 inputs mixing broadcasting elementwise ops, matmul, reductions, shape ops and the
 * softmax family; `of` is the last node plus sometimes an earlier one, `wrt` a random non-empty subset of the inputs.
 */
export function randomProblem(seed: number): RandomProblem {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const shapesIn: Record<string, number[]> = { a: [2, 3], b: [3], c: [3, 2] };
  const vals: Val[] = Object.entries(shapesIn).map(([name, shape]) => ({ name, shape }));
  const nodes: NodeSpec[] = [];
  let k = 0;
  const add = (op: string, inputs: Val[], shape: number[], attrs?: Record<string, unknown>): void => {
    const name = `n${k++}`;
    nodes.push(attrs ? { name, op, inputs: inputs.map((v) => v.name), attrs } : { name, op, inputs: inputs.map((v) => v.name) });
    vals.push({ name, shape });
  };
  const steps = 4 + Math.floor(r() * 5);
  while (nodes.length < steps) {
    const v = r() < 0.6 && vals.length > 3 ? vals[vals.length - 1]! : pick(vals);
    const kind = Math.floor(r() * 10);
    if (kind === 0) add(pick(['tanh', 'sin', 'sigmoid', 'softplus', 'square', 'neg']), [v], v.shape);
    else if (kind === 1 || kind === 2) {
      const others = vals.filter((w) => broadcastShapes(v.shape, w.shape) !== undefined);
      const w = pick(others);
      add(pick(['add', 'mul', 'sub']), [v, w], broadcastShapes(v.shape, w.shape) as number[]);
    } else if (kind === 3 && v.shape.length >= 1) {
      const last = v.shape[v.shape.length - 1]!;
      const rhs = vals.filter((w) => (w.shape.length === 2 && w.shape[0] === last) || (w.shape.length === 1 && w.shape[0] === last));
      if (rhs.length === 0) continue;
      const w = pick(rhs);
      const out = w.shape.length === 1 ? v.shape.slice(0, -1) : [...v.shape.slice(0, -1), w.shape[1]!];
      if (v.shape.length === 1 && w.shape.length === 1) continue;
      add('matmul', [v, w], out);
    } else if (kind === 4 && v.shape.length >= 1) {
      const axis = Math.floor(r() * v.shape.length);
      const keepdims = r() < 0.5;
      const op = pick(['sum', 'mean', 'logsumexp', 'max']);
      const shape = keepdims ? v.shape.map((d, i) => (i === axis ? 1 : d)) : v.shape.filter((_, i) => i !== axis);
      add(op, [v], shape, { axes: [axis], keepdims });
    } else if (kind === 5 && v.shape.length === 2) add('transpose', [v], [v.shape[1]!, v.shape[0]!], { perm: [1, 0] });
    else if (kind === 6 && v.shape.length >= 1) add('reshape', [v], [numel(v.shape)], { shape: [-1] });
    else if (kind === 7 && v.shape.length >= 1) add(pick(['softmax', 'log_softmax']), [v], v.shape, { axis: -1 });
    else if (kind === 8 && v.shape.length >= 1 && v.shape[0]! >= 2) {
      add('slice', [v], [v.shape[0]! - 1, ...v.shape.slice(1)], { starts: [1], ends: [v.shape[0]!] });
    } else if (kind === 9 && v.shape.length >= 1) add('concat', [v, v], [2 * v.shape[0]!, ...v.shape.slice(1)], { axis: 0 });
  }
  const last = vals[vals.length - 1]!.name;
  const of = r() < 0.4 ? [...new Set([last, nodes[Math.floor(r() * (nodes.length - 1))]!.name])] : [last];
  const wrt = Object.keys(shapesIn).filter(() => r() < 0.7);
  if (wrt.length === 0) wrt.push('a');
  const graph: Graph = {
    inputs: Object.fromEntries(Object.entries(shapesIn).map(([n, s]) => [n, { shape: s, datatype: 'FP64' }])),
    nodes,
    outputs: [last],
  };
  const inputs = Object.fromEntries(Object.entries(shapesIn).map(([n, s]) => [n, randTensor(r, s)]));
  return { graph, inputs, of, wrt };
}

/** A tensor's elements as plain numbers (INT64 through Number()), for `toEqual` and arithmetic in expectations. */
export function toNumbers(t: Tensor): number[] {
  const out: number[] = [];
  for (let i = 0; i < t.data.length; i++) out.push(Number(t.data[i]));
  return out;
}
