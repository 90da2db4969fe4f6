/**
 * The solve family beyond the registry-driven checks: det's gradient at singular matrices (the cofactor matrix),
 * cholesky of a non-symmetric matrix (the factor of its symmetric part, with a symmetric gradient; at sizes that fill
 * the kernel's tiles wholly and partly), sym_tril's values, cofactor in FP32 when det(a) is beyond FP32,
 * factorizations reused within a run (of one matrix and of batches), the triangle triangular_solve reads, lstsq's
 * minimum-norm solution, logabsdet of a singular matrix, batches of 1100 small matrices (split across threads), and
 * the errors found while running (over HTTP: status, code, node and batch index) and before (SHAPE_MISMATCH).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate, grad, gradcheck, vjp } from '../../src/index.js';
import type { Graph } from '../../src/graph/types.js';
import type { GradserveApp } from '../../src/server/app.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import { failure } from '../support/errors.js';
import { makeApp } from '../server/helpers.js';

const one = (op: string, shapes: number[][], attrs: Record<string, unknown> = {}, dtype = 'FP64'): Graph => ({
  inputs: Object.fromEntries(shapes.map((s, i) => [`in${i}`, { shape: s, datatype: dtype }])),
  nodes: [{ name: 'y', op, inputs: shapes.map((_, i) => `in${i}`), attrs }],
  outputs: ['y'],
});

/** The cofactor matrix of a 3 x 3 matrix, written out (C[i][j] = (-1)^(i+j) M_ij). */
function cofactor3(m: number[]): number[] {
  const a = (i: number, j: number): number => m[i * 3 + j]!;
  const out: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const r = [0, 1, 2].filter((x) => x !== i);
      const c = [0, 1, 2].filter((x) => x !== j);
      const minor = a(r[0]!, c[0]!) * a(r[1]!, c[1]!) - a(r[0]!, c[1]!) * a(r[1]!, c[0]!);
      out.push(((i + j) % 2 === 0 ? 1 : -1) * minor);
    }
  }
  return out;
}

const close = (got: ArrayLike<number>, want: readonly number[], tol: number): void => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(Number(got[i]) - want[i]!), `[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i]!)));
};

describe('det at singular matrices', () => {
  const rank2 = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const rank1 = [1, 2, 3, 2, 4, 6, -1, -2, -3];
  for (const [name, m] of [['rank n-1', rank2], ['rank 1 (zero cofactors)', rank1]] as const) {
    for (const dtype of ['FP64', 'FP32'] as const) {
      it(`${name}, ${dtype}: det is 0 and its gradient is the cofactor matrix`, async () => {
        const r = await grad(one('det', [[3, 3]], {}, dtype), { in0: tensor(dtype, [3, 3], m) }, 'y', ['in0']);
        expect(Math.abs(Number(r.outputs.y!.data[0]))).toBeLessThanOrEqual(dtype === 'FP64' ? 1e-12 : 1e-5);
        close(r.gradients.in0!.data as Float64Array, cofactor3(m), dtype === 'FP64' ? 1e-12 : 1e-5);
      });
    }
  }

  it('batched: a singular and a regular matrix, each with its own cofactor gradient, scaled by its cotangent', async () => {
    const reg = [2.5, 0.7, -0.4, 0.3, 1.8, 0.9, -0.6, 0.5, 3.1];
    const r = await vjp(one('det', [[2, 3, 3]]), { in0: tensor('FP64', [2, 3, 3], [...rank2, ...reg]) }, { y: tensor('FP64', [2], [2, -1]) }, ['in0']);
    close(r.gradients.in0!.data as Float64Array, [...cofactor3(rank2).map((v) => 2 * v), ...cofactor3(reg).map((v) => -v)], 1e-12);
  });
});

describe('cholesky', () => {
  it('of a non-symmetric matrix is the factor of its symmetric part, with a symmetric gradient', async () => {
    const a = [4, 1.4, 0.2, 0.6, 3, -0.3, 0.8, 0.7, 2.5];
    const s = a.map((_, k) => (a[k]! + a[(k % 3) * 3 + Math.floor(k / 3)]!) / 2);
    const g = tensor('FP64', [3, 3], [0.3, -0.2, 0.5, 0.1, 0.7, -0.4, 0.2, 0.6, -0.9]);
    const ra = await vjp(one('cholesky', [[3, 3]]), { in0: tensor('FP64', [3, 3], a) }, { y: g }, ['in0']);
    const rs = await vjp(one('cholesky', [[3, 3]]), { in0: tensor('FP64', [3, 3], s) }, { y: g }, ['in0']);
    close(ra.outputs.y!.data as Float64Array, Array.from(rs.outputs.y!.data as Float64Array), 1e-14);
    const ga = Array.from(ra.gradients.in0!.data as Float64Array);
    close(ga, Array.from(rs.gradients.in0!.data as Float64Array), 1e-12);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(ga[i * 3 + j]).toBeCloseTo(ga[j * 3 + i]!, 14);
    // L·Lᵀ = (a + aᵀ) / 2 and L is lower triangular
    const l = Array.from(ra.outputs.y!.data as Float64Array);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        if (j > i) expect(l[i * 3 + j]).toBe(0);
        let acc = 0;
        for (let k = 0; k < 3; k++) acc += l[i * 3 + k]! * l[j * 3 + k]!;
        expect(acc).toBeCloseTo(s[i * 3 + j]!, 13);
      }
    }
  });
});

describe('cholesky of larger matrices (the kernel\'s passes in tiles of 32: whole, partial and several)', () => {
  for (const [dtype, n, tol] of [['FP64', 70, 1e-12], ['FP32', 45, 1e-4], ['FP64', 32, 1e-12], ['FP64', 33, 1e-12], ['FP64', 150, 1e-12], ['FP64', 1, 1e-12]] as const) {
    it(`${dtype}, n = ${n}, a batch of 2 non-symmetric matrices: lower triangular, L·Lᵀ = (a + aᵀ) / 2`, async () => {
      const nn = n * n;
      const a = Array.from({ length: 2 * nn }, (_, k) => Math.sin(0.7 * k) * 0.5 + ((k % nn) % (n + 1) === 0 ? n / 4 : 0));
      const r = await evaluate(one('cholesky', [[2, n, n]], {}, dtype), { in0: tensor(dtype, [2, n, n], a) });
      const l = Array.from(r.outputs.y!.data as Float64Array);
      for (let m = 0; m < 2; m++) {
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            if (j > i) expect(l[m * nn + i * n + j]).toBe(0);
            let acc = 0;
            for (let k = 0; k < n; k++) acc += l[m * nn + i * n + k]! * l[m * nn + j * n + k]!;
            const s = (a[m * nn + i * n + j]! + a[m * nn + j * n + i]!) / 2;
            expect(Math.abs(acc - s), `[${m}, ${i}, ${j}]`).toBeLessThanOrEqual(tol * n);
          }
        }
      }
    });
  }
});

describe('cofactor in FP32 when det(a) is beyond FP32', () => {
  it('1e10·I (4 x 4): det 1e40 overflows FP32, the cofactor matrix (1e30·I) does not', async () => {
    const a = Array.from({ length: 16 }, (_, k) => (k % 5 === 0 ? 1e10 : 0));
    const r = await evaluate(one('cofactor', [[4, 4]], {}, 'FP32'), { in0: tensor('FP32', [4, 4], a) });
    const c = Array.from(r.outputs.y!.data as Float32Array);
    for (let k = 0; k < 16; k++) expect(c[k]).toBe(k % 5 === 0 ? Math.fround(1e30) : 0);
  });
});

describe('sym_tril (cholesky\'s VJP in one pass)', () => {
  for (const n of [3, 40]) {
    for (const adjoint of [false, true]) {
      it(`n = ${n}, adjoint ${adjoint}: ${adjoint ? '(tril(a) + triu(a, 1)ᵀ) / 2' : '(tril(a) + tril(a, -1)ᵀ) / 2'}, written out`, async () => {
        const a = Array.from({ length: 2 * n * n }, (_, k) => Math.sin(0.37 * k) + k / 100);
        const r = await evaluate(one('sym_tril', [[2, n, n]], { adjoint }), { in0: tensor('FP64', [2, n, n], a) });
        const want: number[] = [];
        for (let m = 0; m < 2; m++) {
          const at = (i: number, j: number): number => a[m * n * n + i * n + j]!;
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < n; j++) {
              if (adjoint) want.push(j > i ? 0 : j === i ? at(i, i) / 2 : (at(i, j) + at(j, i)) / 2);
              else want.push(j <= i ? at(i, j) / 2 : at(j, i) / 2);
            }
          }
        }
        expect(Array.from(r.outputs.y!.data as Float64Array)).toEqual(want);
      });
    }
  }
});

describe('triangular_solve reads only its triangle', () => {
  it('the other triangle (and the diagonal with unit_diagonal) changes nothing and gets zero gradient', async () => {
    const lower = [2, 0, 0, 1, 3, 0, 4, 5, 6];
    const noisy = [2, 9, -7, 1, 3, 8, 4, 5, 6];
    const b = tensor('FP64', [3, 1], [2, 4, 6]);
    const g = one('triangular_solve', [[3, 3], [3, 1]]);
    const x1 = (await evaluate(g, { in0: tensor('FP64', [3, 3], lower), in1: b })).outputs.y!;
    const r = await vjp(g, { in0: tensor('FP64', [3, 3], noisy), in1: b }, { y: tensor('FP64', [3, 1], [1, 1, 1]) }, ['in0']);
    close(r.outputs.y!.data as Float64Array, Array.from(x1.data as Float64Array), 0);
    close(r.outputs.y!.data as Float64Array, [1, 1, -0.5], 1e-15);
    const ga = r.gradients.in0!.data as Float64Array;
    for (const k of [1, 2, 5]) expect(ga[k]).toBe(0);
    const unit = one('triangular_solve', [[3, 3], [3, 1]], { unit_diagonal: true });
    const ru = await vjp(unit, { in0: tensor('FP64', [3, 3], noisy), in1: b }, { y: tensor('FP64', [3, 1], [1, 1, 1]) }, ['in0']);
    // unit lower: x0 = 2, x1 = 4 - 1·2 = 2, x2 = 6 - 4·2 - 5·2 = -12
    close(ru.outputs.y!.data as Float64Array, [2, 2, -12], 1e-15);
    for (const k of [0, 1, 2, 4, 5, 8]) expect((ru.gradients.in0!.data as Float64Array)[k]).toBe(0);
  });
});

describe('lstsq and logabsdet values', () => {
  it('lstsq of an underdetermined system is its minimum-norm solution', async () => {
    const y = (await evaluate(one('lstsq', [[1, 2], [1]]), { in0: tensor('FP64', [1, 2], [1, 1]), in1: tensor('FP64', [1], [2]) })).outputs.y!;
    expect(y.shape).toEqual([2]);
    close(y.data as Float64Array, [1, 1], 1e-14);
  });
  it('logabsdet of a singular matrix is -Infinity', async () => {
    const y = (await evaluate(one('logabsdet', [[2, 2]]), { in0: tensor('FP64', [2, 2], [1, 2, 2, 4]) })).outputs.y!;
    expect(y.data[0]).toBe(-Infinity);
  });
});

describe('factorizations reused within one run (matrices from n = 32)', () => {
  const n = 40;
  const wellConditioned = (shift: number): number[] =>
    Array.from({ length: n * n }, (_, k) => Math.sin(1.3 * k + shift) * 0.3 + (k % (n + 1) === 0 ? 4 : 0));
  const a1 = wellConditioned(0);
  const a2 = a1.map((v, k) => (k === 7 ? v + 1e-3 : v));
  const b = Array.from({ length: n }, (_, k) => Math.cos(k));

  it('two solves with matrices that differ in one element give each its own answer', async () => {
    const g: Graph = {
      inputs: { a1: { shape: [n, n], datatype: 'FP64' }, a2: { shape: [n, n], datatype: 'FP64' }, b: { shape: [n], datatype: 'FP64' } },
      nodes: [{ name: 'x1', op: 'solve', inputs: ['a1', 'b'] }, { name: 'x2', op: 'solve', inputs: ['a2', 'b'] }],
      outputs: ['x1', 'x2'],
    };
    const ins = { a1: tensor('FP64', [n, n], a1), a2: tensor('FP64', [n, n], a2), b: tensor('FP64', [n], b) };
    const both = (await evaluate(g, ins)).outputs;
    const alone = async (a: number[]): Promise<Tensor> => (await evaluate(one('solve', [[n, n], [n]]), { in0: tensor('FP64', [n, n], a), in1: tensor('FP64', [n], b) })).outputs.y!;
    expect(Array.from(both.x1!.data as Float64Array)).toEqual(Array.from((await alone(a1)).data as Float64Array));
    expect(Array.from(both.x2!.data as Float64Array)).toEqual(Array.from((await alone(a2)).data as Float64Array));
    expect(both.x1!.data).not.toEqual(both.x2!.data);
  });

  for (const [op, shapes] of [['solve', [[n, n], [n]]], ['det', [[n, n]]], ['logabsdet', [[n, n]]], ['inv', [[n, n]]]] as const) {
    it(`${op} at n = ${n}: the gradient (through the reused LU) passes the finite-difference check`, async () => {
      const g: Graph = { ...one(op, shapes as unknown as number[][]), nodes: [...one(op, shapes as unknown as number[][]).nodes, { name: 's', op: 'sum', inputs: ['y'] }], outputs: ['s'] };
      const ins: Record<string, Tensor> = { in0: tensor('FP64', [n, n], a1) };
      if (op === 'solve') ins.in1 = tensor('FP64', [n], b);
      const r = await gradcheck(g, ins, 's', Object.keys(ins), { eps: 1e-6, atol: 1e-6, rtol: 1e-4 });
      expect(r.ok, JSON.stringify(r)).toBe(true);
    });
  }
});

describe('factorizations of batches of small matrices reused within one run', () => {
  const n = 6, count = 12;
  const batch = (shift: number): number[] =>
    Array.from({ length: count * n * n }, (_, k) => Math.sin(1.7 * k + shift) * 0.3 + ((k % (n * n)) % (n + 1) === 0 ? 3 : 0));
  const a1 = batch(0);
  const a2 = a1.map((v, k) => (k === n * n * 7 + 3 ? v + 1e-3 : v));
  const b = Array.from({ length: count * n }, (_, k) => Math.cos(k));

  it('two solves with batches that differ in one element of one member give each its own answer', async () => {
    const g: Graph = {
      inputs: { a1: { shape: [count, n, n], datatype: 'FP64' }, a2: { shape: [count, n, n], datatype: 'FP64' }, b: { shape: [count, n], datatype: 'FP64' } },
      nodes: [{ name: 'x1', op: 'solve', inputs: ['a1', 'b'] }, { name: 'x2', op: 'solve', inputs: ['a2', 'b'] }],
      outputs: ['x1', 'x2'],
    };
    const ins = { a1: tensor('FP64', [count, n, n], a1), a2: tensor('FP64', [count, n, n], a2), b: tensor('FP64', [count, n], b) };
    const both = (await evaluate(g, ins)).outputs;
    const alone = async (a: number[]): Promise<Tensor> =>
      (await evaluate(one('solve', [[count, n, n], [count, n]]), { in0: tensor('FP64', [count, n, n], a), in1: tensor('FP64', [count, n], b) })).outputs.y!;
    expect(Array.from(both.x1!.data as Float64Array)).toEqual(Array.from((await alone(a1)).data as Float64Array));
    expect(Array.from(both.x2!.data as Float64Array)).toEqual(Array.from((await alone(a2)).data as Float64Array));
    expect(Array.from(both.x1!.data as Float64Array).slice(0, 7 * n)).toEqual(Array.from(both.x2!.data as Float64Array).slice(0, 7 * n));
    expect(both.x1!.data).not.toEqual(both.x2!.data);
  });

  for (const [op, shapes] of [['solve', [[count, n, n], [count, n]]], ['det', [[count, n, n]]], ['inv', [[count, n, n]]]] as const) {
    it(`${op} of a batch of ${count} matrices ${n} x ${n}: the gradient (through the reused LUs) passes the finite-difference check`, async () => {
      const base = one(op, shapes as unknown as number[][]);
      const g: Graph = { ...base, nodes: [...base.nodes, { name: 's', op: 'sum', inputs: ['y'] }], outputs: ['s'] };
      const ins: Record<string, Tensor> = { in0: tensor('FP64', [count, n, n], a1) };
      if (op === 'solve') ins.in1 = tensor('FP64', [count, n], b);
      const r = await gradcheck(g, ins, 's', Object.keys(ins), { eps: 1e-6, atol: 1e-6, rtol: 1e-4 });
      expect(r.ok, JSON.stringify(r)).toBe(true);
    });
  }
});

describe('batches of 1100 small matrices (split across threads when a core is idle)', () => {
  const count = 1100, n = 3, nn = n * n;
  const member = (k: number): number[] => Array.from({ length: nn }, (_, e) => Math.sin(0.9 * (k * nn + e)) * 0.4 + (e % (n + 1) === 0 ? 2 : 0));
  const a = Array.from({ length: count }, (_, k) => member(k)).flat();

  it('solve: every member satisfies a·x = b; inv: every member times a is I; cholesky: L·Lᵀ of every member', async () => {
    const b = Array.from({ length: count * n }, (_, k) => Math.cos(k));
    const x = (await evaluate(one('solve', [[count, n, n], [count, n]]), { in0: tensor('FP64', [count, n, n], a), in1: tensor('FP64', [count, n], b) })).outputs.y!.data as Float64Array;
    const inv = (await evaluate(one('inv', [[count, n, n]]), { in0: tensor('FP64', [count, n, n], a) })).outputs.y!.data as Float64Array;
    const spd = Array.from({ length: count }, (_, k) => {
      const m = member(k);
      return Array.from({ length: nn }, (_, e) => m.slice(0, n).reduce((acc, _v, j) => acc + m[Math.floor(e / n) * n + j]! * m[(e % n) * n + j]!, 0));
    }).flat();
    const l = (await evaluate(one('cholesky', [[count, n, n]]), { in0: tensor('FP64', [count, n, n], spd) })).outputs.y!.data as Float64Array;
    for (let k = 0; k < count; k++) {
      const o = k * nn;
      for (let i = 0; i < n; i++) {
        let ax = 0;
        for (let j = 0; j < n; j++) ax += a[o + i * n + j]! * x[k * n + j]!;
        expect(Math.abs(ax - b[k * n + i]!), `solve, member ${k}, row ${i}`).toBeLessThan(1e-12);
        for (let j = 0; j < n; j++) {
          let ia = 0, llt = 0;
          for (let m = 0; m < n; m++) {
            ia += inv[o + i * n + m]! * a[o + m * n + j]!;
            llt += l[o + i * n + m]! * l[o + j * n + m]!;
          }
          expect(Math.abs(ia - (i === j ? 1 : 0)), `inv, member ${k}, [${i}, ${j}]`).toBeLessThan(1e-12);
          expect(Math.abs(llt - spd[o + i * n + j]!), `cholesky, member ${k}, [${i}, ${j}]`).toBeLessThan(1e-12);
          if (j > i) expect(l[o + i * n + j]).toBe(0);
        }
      }
    }
  });

  it('SINGULAR_MATRIX names the lowest singular member (700, not 1050), whichever thread met either', async () => {
    const bad = [...a];
    for (const k of [1050, 700]) bad.splice(k * nn, nn, ...Array.from({ length: nn }, () => 1));
    for (let round = 0; round < 5; round++) {
      const e = await failure(evaluate(one('inv', [[count, n, n]]), { in0: tensor('FP64', [count, n, n], bad) }));
      expect(e.code).toBe('SINGULAR_MATRIX');
      expect(e.message).toMatch(/node "y" \(inv\): the matrix at batch index \[700\] is singular/);
    }
  });
});

describe('SHAPE_MISMATCH before anything runs, naming the node and the shapes', () => {
  const cases: [string, Graph, RegExp][] = [
    ['inv of a non-square matrix', one('inv', [[2, 3]]), /node "y" \(inv\).*\[2, 3\].*not square/],
    ['cholesky of a vector', one('cholesky', [[3]]), /node "y" \(cholesky\).*\[3\]/],
    ['solve with b of the wrong size', one('solve', [[3, 3], [4, 2]]), /node "y" \(solve\).*\[3, 3\].*\[4, 2\]/],
    ['solve with batch dims that do not broadcast', one('solve', [[2, 3, 3], [4, 3, 1]]), /node "y" \(solve\).*do not broadcast/],
    ['triangular_solve right side with the wrong size', one('triangular_solve', [[3, 3], [3, 2]], { left: false }), /node "y" \(triangular_solve\).*\[3, 3\].*\[3, 2\]/],
    ['lstsq with b of the wrong row count', one('lstsq', [[4, 3], [3, 1]]), /node "y" \(lstsq\).*\[4, 3\].*\[3, 1\]/],
    ['det of a non-square batch', one('det', [[2, 2, 3]]), /node "y" \(det\).*not square/],
  ];
  for (const [name, g, re] of cases) {
    it(name, async () => {
      const inputs: Record<string, Tensor> = Object.fromEntries(Object.entries(g.inputs!).map(([k, v]) => [k, tensor('FP64', v.shape as number[])]));
      const e = await failure(evaluate(g, inputs));
      expect(e.code).toBe('SHAPE_MISMATCH');
      expect(e.message).toMatch(re);
    });
  }
});

describe('errors found while running, over HTTP', () => {
  let app: GradserveApp;
  beforeAll(async () => { app = await makeApp(); });
  afterAll(async () => { await app.close(); });

  const post = async (url: string, body: unknown): Promise<{ status: number; body: Record<string, any> }> => {
    const r = await app.inject({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return { status: r.statusCode, body: r.json() };
  };
  const graph = (op: string, shapes: Record<string, number[]>, names: string[]) => ({
    inputs: Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, { shape: s, datatype: 'FP64' }])),
    nodes: [{ name: 'x', op, inputs: names }],
    outputs: ['x'],
  });
  const eye = [1, 0, 0, 1];
  const singular = [1, 2, 2, 4];

  it('SINGULAR_MATRIX: inv of a batch whose matrix [1, 0] is singular', async () => {
    const r = await post('/v1/evaluate', { graph: graph('inv', { a: [2, 2, 2, 2] }, ['a']), inputs: { a: { shape: [2, 2, 2, 2], data: [...eye, ...eye, ...singular, ...eye] } } });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('SINGULAR_MATRIX');
    expect(r.body.detail).toMatch(/node "x" \(inv\)/);
    expect(r.body.detail).toMatch(/batch index \[1, 0\]/);
    expect(r.body.errors[0].path).toBe('graph.nodes[0]');
  });

  it('SINGULAR_MATRIX: solve, the lowest singular batch index whichever thread found it', async () => {
    const data = [...eye, ...singular, ...eye, ...singular];
    const r = await post('/v1/evaluate', { graph: graph('solve', { a: [4, 2, 2], b: [4, 2] }, ['a', 'b']), inputs: { a: { shape: [4, 2, 2], data }, b: { shape: [4, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] } } });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('SINGULAR_MATRIX');
    expect(r.body.detail).toMatch(/node "x" \(solve\): the matrix at batch index \[1\] is singular/);
  });

  it('SINGULAR_MATRIX from a gradient: /v1/grad of sum(inv(a)) at a singular a', async () => {
    const g = { inputs: { a: { shape: [2, 2], datatype: 'FP64' } }, nodes: [{ name: 'i', op: 'inv', inputs: ['a'] }, { name: 's', op: 'sum', inputs: ['i'] }], outputs: ['s'] };
    const r = await post('/v1/grad', { graph: g, inputs: { a: { shape: [2, 2], data: singular } }, of: 's', wrt: ['a'] });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('SINGULAR_MATRIX');
    expect(r.body.detail).toMatch(/node "i" \(inv\): the matrix is singular/);
  });

  it('NOT_POSITIVE_DEFINITE: cholesky, naming the batch index', async () => {
    const spd = [4, 1, 1, 3];
    const indefinite = [1, 2, 2, 1];
    const r = await post('/v1/evaluate', { graph: graph('cholesky', { a: [3, 2, 2] }, ['a']), inputs: { a: { shape: [3, 2, 2], data: [...spd, ...spd, ...indefinite] } } });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('NOT_POSITIVE_DEFINITE');
    expect(r.body.detail).toMatch(/node "x" \(cholesky\): the matrix at batch index \[2\] is not positive definite/);
  });

  it('SHAPE_MISMATCH over HTTP: solve with a non-square a, pointing at the node', async () => {
    const r = await post('/v1/evaluate', { graph: graph('solve', { a: [2, 3], b: [2] }, ['a', 'b']), inputs: { a: { shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }, b: [1, 2] } });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('SHAPE_MISMATCH');
    expect(r.body.detail).toMatch(/node "x" \(solve\).*\[2, 3\] is not square/);
    expect(r.body.errors[0].path).toBe('graph.nodes[0].inputs[0]');
  });
});
