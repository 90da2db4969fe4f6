/**
 * einsum: random equations (diagonals, sums, broadcasting size-1 letters, several operands) against a naive loop and
 * through the VJP/JVP rule checker; the plan (one matmul per pair, transposes only where needed); zero-size and integer
 * operands; the rules on unknown dims; and error bodies (equation errors point at the character index, size errors
 * name the operand, the letter and the sizes).
 */
import { describe, expect, it } from 'vitest';
import { evaluate, GradserveError } from '../../src/index.js';
import { makeOpKernels } from '../../src/engine/executor.js';
import type { Graph } from '../../src/graph/types.js';
import { kernels } from '../../src/kernels.js';
import { parseEquation, planEinsum } from '../../src/ops/einsum_plan.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { rng } from '../support/random.js';
import { checkRules, f32, f64, opDef, Recorder, runOp, values } from './structural_support.js';

/** Naive einsum over letters only (sizes 1 broadcast): a loop over every assignment of the letters. */
function naive(equation: string, xs: Tensor[]): { shape: number[]; data: number[] } {
  const [lhs, out] = equation.replace(/ /g, '').split('->') as [string, string];
  const terms = lhs.split(',');
  const size = new Map<string, number>();
  terms.forEach((t, i) => [...t].forEach((l, ax) => size.set(l, Math.max(size.get(l) ?? 1, xs[i]!.shape[ax]!))));
  const letters = [...size.keys()];
  const shape = [...out].map((l) => size.get(l)!);
  const data = new Array<number>(shape.reduce((p, d) => p * d, 1)).fill(0);
  const idx = new Map<string, number>();
  const walk = (k: number): void => {
    if (k === letters.length) {
      let p = 1;
      terms.forEach((t, i) => {
        let flat = 0;
        [...t].forEach((l, ax) => { flat = flat * xs[i]!.shape[ax]! + (xs[i]!.shape[ax] === 1 ? 0 : idx.get(l)!); });
        p *= Number(xs[i]!.data[flat]);
      });
      let o = 0;
      [...out].forEach((l, ax) => { o = o * shape[ax]! + idx.get(l)!; });
      data[o] += p;
      return;
    }
    for (let v = 0; v < size.get(letters[k]!)!; v++) {
      idx.set(letters[k]!, v);
      walk(k + 1);
    }
  };
  walk(0);
  return { shape, data };
}

/** A random equation over a few letters: repeats within an operand, size-1 broadcasts, letters summed away. */
function randomCase(r: () => number): { equation: string; shapes: number[][] } {
  const pool = 'abcdeF';
  const size = new Map([...pool].map((l) => [l, 1 + Math.floor(r() * 3)]));
  const n = 1 + Math.floor(r() * 3);
  const terms: string[] = [];
  const shapes: number[][] = [];
  for (let i = 0; i < n; i++) {
    const rank = Math.floor(r() * 4);
    let t = '';
    for (let k = 0; k < rank; k++) t += pool[Math.floor(r() * pool.length)]!;
    terms.push(t);
    // a letter seen once in an operand may be 1 there (it broadcasts); repeats keep their full size
    shapes.push([...t].map((l) => ([...t].filter((m) => m === l).length === 1 && r() < 0.2 ? 1 : size.get(l)!)));
  }
  const used = [...new Set(terms.join(''))];
  const out = used.filter(() => r() < 0.5).sort(() => r() - 0.5).join('');
  return { equation: `${terms.join(',')}->${out}`, shapes };
}

describe('random equations', () => {
  const r = rng(4242);
  const cases = Array.from({ length: 60 }, () => randomCase(r));
  it.each(cases.map((c) => [c.equation, c] as const))('%s: value against a naive loop; VJP and JVP rules', async (_l, c) => {
    const vr = rng(c.equation.length * 31 + c.shapes.flat().length);
    const xs = c.shapes.map((s) => f64(s, Array.from({ length: s.reduce((p, d) => p * d, 1) }, () => vr() * 2 - 1)));
    const y = await runOp('einsum', xs, { equation: c.equation });
    const want = naive(c.equation, xs);
    expect(y.shape).toEqual(want.shape);
    want.data.forEach((w, i) => expect(Number(y.data[i])).toBeCloseTo(w, 12));
    const check = await checkRules('einsum', { inputs: c.shapes.map((shape) => ({ shape })), attrs: { equation: c.equation } }, 7);
    expect(check.shapesOk).toBe(true);
    expect(check.maxFdError).toBeLessThan(1e-6);
    expect(check.dualityError).toBeLessThan(1e-9);
  });
});

describe('the plan', () => {
  const plan = (eq: string, shapes: number[][]) => planEinsum(parseEquation(eq), shapes);

  it('a batched product is one matmul and nothing else', () => {
    const p = plan('bij,bjk->bik', [[4, 2, 3], [4, 3, 5]]);
    expect(p.steps.map((s) => s.op)).toEqual(['matmul']);
    expect(p.flops).toBe(2 * 4 * 2 * 3 * 5);
  });

  it('transposed operands use the matmul flags instead of transposes', () => {
    const p = plan('ji,kj->ik', [[3, 2], [4, 3]]);
    expect(p.steps.map((s) => s.op)).toEqual(['matmul']);
    expect(p.steps[0]).toMatchObject({ transA: true, transB: true });
  });

  it('an outer product and an elementwise product broadcast a mul; a diagonal is a strided slice', () => {
    expect(plan('i,j->ij', [[3], [4]]).steps.map((s) => s.op)).toEqual(['reshape', 'reshape', 'mul']);
    expect(plan('bi,bi->b', [[5, 3], [5, 3]]).steps.map((s) => s.op)).toEqual(['mul', 'sum']);
    const d = plan('ii->i', [[4, 4]]);
    expect(d.steps).toEqual([{ op: 'reshape', src: 0, shape: [16], dst: 1 }, { op: 'slice', src: 1, starts: [0], steps: [5], shape: [4], dst: 2 }]);
  });
});

describe('operands', () => {
  it('zero-size letters: an empty contraction is zeros, an empty output is empty', async () => {
    const y = await runOp('einsum', [f64([2, 0], []), f64([0, 3], [])], { equation: 'ij,jk->ik' });
    expect(y.shape).toEqual([2, 3]);
    expect(values(y)).toEqual([0, 0, 0, 0, 0, 0]);
    expect((await runOp('einsum', [f64([0, 3], []), f64([3, 2], [1, 2, 3, 4, 5, 6])], { equation: 'ij,jk->ik' })).shape).toEqual([0, 2]);
  });

  it('integers contract exactly', async () => {
    const a = tensor('INT32', [2, 2], [1, 2, 3, 4]);
    const y = await runOp('einsum', [a, a], { equation: 'ij,jk->ik' });
    expect(y.dtype).toBe('INT32');
    expect(values(y)).toEqual([7, 10, 15, 22]);
  });

  it('an equation that only relabels returns a copy, never the operand buffer', async () => {
    const x = f64([2, 3], [1, 2, 3, 4, 5, 6]);
    const y = await opDef('einsum').run([x], { equation: 'ij->ij' }, makeOpKernels(kernels));
    expect(y.data).not.toBe(x.data);
    expect(values(y)).toEqual(values(x));
  });

  it("'...' broadcasts and is summed when the output lacks it (PyTorch)", async () => {
    const y = await runOp('einsum', [f64([2, 1, 2], [1, 2, 3, 4]), f64([3, 2], [1, 1, 2, 2, 3, 3])], { equation: '...i,...i->...' });
    expect(y.shape).toEqual([2, 3]);
    expect(values(y)).toEqual([3, 6, 9, 7, 14, 21]);
    expect(values(await runOp('einsum', [f64([2, 2], [1, 2, 3, 4])], { equation: '...->' }))).toEqual([10]);
  });

  it('FP32 in, FP32 out', async () => {
    const y = await runOp('einsum', [f32([3], [1, 2, 3]), f32([3], [4, 5, 6])], { equation: 'i,i->' });
    expect(y.dtype).toBe('FP32');
    expect(values(y)).toEqual([32]);
  });
});

describe('rules on unknown dims', () => {
  async function rulesOn(eq: string, xs: Tensor[], declared: (number | null)[][]) {
    const def = opDef('einsum');
    const rec = new Recorder();
    const refs = xs.map((x, i) => rec.input(x, declared[i]));
    const y = rec.op('einsum', refs, { equation: eq });
    const g = rec.input(f64(y.shape.map((d, i) => d ?? [2, 3, 3][i]!), new Array(y.shape.reduce<number>((p, d, i) => p * (d ?? [2, 3, 3][i]!), 1)).fill(0).map((_, k) => k - 2)), y.shape);
    return rec.run(def.vjp!({ e: rec, inputs: refs, output: y, g, attrs: { equation: eq } }));
  }

  it.each([
    ['ij,jk->ik', [[2, 4], [4, 3]]],
    ['ii,ij->ij', [[2, 2], [2, 3]]],
    ['ij,j->i', [[2, 3], [3]]],
  ])('%s: symbolic and concrete rules agree', async (eq, shapes) => {
    const r = rng(3);
    const xs = shapes.map((s) => f64(s, Array.from({ length: s.reduce((p, d) => p * d, 1) }, () => r() - 0.5)));
    const sym = await rulesOn(eq, xs, shapes.map((s) => s.map(() => null)));
    const con = await rulesOn(eq, xs, shapes);
    sym.forEach((t, i) => expect(values(t)).toEqual(values(con[i]!)));
  });
});

describe('error bodies', () => {
  function graphOf(equation: string, xs: Tensor[]): Graph {
    return {
      inputs: Object.fromEntries(xs.map((x, i) => [`x${i}`, { shape: [...x.shape], datatype: x.dtype }])),
      nodes: [{ name: 'y', op: 'einsum', inputs: xs.map((_, i) => `x${i}`), attrs: { equation } }],
      outputs: ['y'],
    };
  }

  async function failure(equation: string, xs: Tensor[]): Promise<GradserveError> {
    try {
      await evaluate(graphOf(equation, xs), Object.fromEntries(xs.map((x, i) => [`x${i}`, x])));
    } catch (e) {
      if (e instanceof GradserveError) return e;
      throw e;
    }
    throw new Error(`${equation} did not fail`);
  }

  const m23 = f64([2, 3], [1, 2, 3, 4, 5, 6]);
  const m34 = f64([3, 4], new Array(12).fill(1));

  it.each([
    ['ij,jk', /no '->' \(index 5 is the end\): the output subscripts must be explicit/],
    ['ij,jk->ik1', /character '1' at index 9 is not a letter/],
    ['i.j,jk->ik', /'\.' at index 1 is not part of an ellipsis/],
    ['...i...,jk->ik', /a second '\.\.\.' at index 4 in operand 0 \(the first is at index 0\)/],
    ['ij,jk->ii', /output index 'i' at index 8 repeats \(first at index 7\)/],
    ['ij,jk->iz', /output index 'z' at index 8 appears in no operand/],
    ['ij,jk-ik', /'-' at index 5 is not followed by '>'/],
    ['ij,jk->i,k', /',' at index 8 after '->'/],
    ['ij,jk->i->k', /a second '->' at index 8/],
    ['ij,jk>ik', /'>' at index 5 is not preceded by '-'/],
    ['ij->ij', /has 1 operand but the node has 2 inputs/],
  ])('%s is INVALID_ATTRS pointing at the index', async (equation, message) => {
    const e = await failure(equation, [m23, m34]);
    expect(e.code).toBe('INVALID_ATTRS');
    expect(e.errors?.[0]?.path).toBe('graph.nodes[0].attrs.equation');
    expect(e.message).toContain(`node "y" (einsum): equation "${equation}"`);
    expect(e.message).toMatch(message);
  });

  it.each([
    ['ijk,jk->i', [m23, m34], 0, /operand 0 has shape \[2, 3\] \(rank 2\) but its subscripts "ijk" name 3 axes/],
    ['ij,jk...->ik', [m23, f64([3], [1, 2, 3])], 1, /operand 1 has shape \[3\] \(rank 1\) but its subscripts "jk\.\.\." name at least 2 axes/],
    ['ij,jk->ik', [m23, f64([4, 5], new Array(20).fill(0))], 1, /index 'j' has size 3 in operand 0 \[2, 3\] but 4 in operand 1 \[4, 5\]/],
    ['ii->i', [m23], 0, /index 'i' repeats in operand 0 \[2, 3\] with sizes 2 and 3/],
    ['...i,...i->...', [f64([3, 2], new Array(6).fill(0)), f64([4, 2], new Array(8).fill(0))], 1, /'\.\.\.' axis 0 has size 3 in operand 0 \[3, 2\] but 4 in operand 1 \[4, 2\]/],
  ])('%s is SHAPE_MISMATCH at the operand, naming the letter and the sizes', async (equation, xs, at, message) => {
    const e = await failure(equation, xs as Tensor[]);
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.errors?.[0]?.path).toBe(`graph.nodes[0].inputs[${at}]`);
    expect(e.message).toMatch(message);
  });

  it('operands of two datatypes are DATATYPE_MISMATCH', async () => {
    const e = await failure('ij,jk->ik', [m23, f32([3, 4], new Array(12).fill(1))]);
    expect(e.code).toBe('DATATYPE_MISMATCH');
    expect(e.message).toMatch(/operands\[0\] is FP64 but operands\[1\] is FP32/);
  });
});
