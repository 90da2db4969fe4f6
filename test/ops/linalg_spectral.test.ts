/**
 * eigh_values, svd_values, their internal vector ops, qr_q and qr_r: values of matrices whose spectra are known, the
 * QR factors (orthonormal, triangular, rebuilding a, LAPACK's signs), ordering, the
 * symmetric-part reading of eigh (values and a symmetric gradient), the decompositions the vector ops return (they
 * rebuild the input and are orthonormal), batches spread over threads giving the numbers of one matrix at a time,
 * large matrices, non-finite members, empty shapes, shape and datatype errors, and a LAPACK failure reported as 422
 * NO_CONVERGENCE naming the node. Gradients, second order and batching rules are checked for every op by the
 * registry-driven tests; values and derivatives against PyTorch by the fixtures.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { evaluate, grad, GraphBuilder, transform, vjp } from '../../src/index.js';
import { loadKernels, setKernels } from '../../src/engine/executor.js';
import type { Graph } from '../../src/graph/types.js';
import type { Kernels } from '../../src/kernels.types.js';
import { tensor, type Tensor } from '../../src/tensor/tensor.js';
import type { DType } from '../../src/tensor/dtype.js';
import { failure } from '../support/errors.js';
import { rng } from '../support/random.js';

function oneNode(op: string, shape: number[], dtype: DType = 'FP64'): Graph {
  return { inputs: { a: { shape, datatype: dtype } }, nodes: [{ name: 'y', op, inputs: ['a'] }], outputs: ['y'] };
}

async function run(op: string, a: Tensor): Promise<Tensor> {
  return (await evaluate(oneNode(op, [...a.shape], a.dtype), { a })).outputs.y!;
}

const nums = (t: Tensor): number[] => Array.from(t.data as Float64Array, Number);

function expectNear(actual: readonly number[], expected: readonly number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!), `[${i}]: ${v} vs ${expected[i]}`).toBeLessThanOrEqual(tol));
}

/** Row-major n x n product helpers for checking decompositions. */
function matmul(a: number[], b: number[], m: number, k: number, n: number, ta = false, tb = false): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++)
      for (let p = 0; p < k; p++) out[i * n + j]! += (ta ? a[p * m + i]! : a[i * k + p]!) * (tb ? b[j * k + p]! : b[p * n + j]!);
  return out;
}
const eye = (n: number): number[] => Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
const randomMatrix = (r: () => number, count: number): number[] => Array.from({ length: count }, () => 2 * r() - 1);

describe('eigh_values', () => {
  it('eigenvalues in ascending order, batched, FP32 and FP64', async () => {
    // [[2, 1], [1, 2]] has 1 and 3; a diagonal matrix has its diagonal, sorted
    const a = tensor('FP64', [2, 2, 2], [2, 1, 1, 2, 5, 0, 0, -4]);
    expectNear(nums(await run('eigh_values', a)), [1, 3, -4, 5], 1e-14);
    const d = tensor('FP32', [3, 3], [3, 0, 0, 0, -1, 0, 0, 0, 2]);
    const y = await run('eigh_values', d);
    expect(y.dtype).toBe('FP32');
    expect(y.shape).toEqual([3]);
    expectNear(nums(y), [-1, 2, 3], 1e-6);
  });

  it('reads the symmetric part of a: a, aᵀ and (a + aᵀ) / 2 have the same eigenvalues, and the gradient is symmetric', async () => {
    const r = rng(7);
    const n = 4;
    const a = randomMatrix(r, n * n);
    const at = Array.from({ length: n * n }, (_, i) => a[(i % n) * n + Math.floor(i / n)]!);
    const s = a.map((v, i) => (v + at[i]!) / 2);
    const [ya, yt, ys] = await Promise.all([a, at, s].map((m) => run('eigh_values', tensor('FP64', [n, n], m))));
    expectNear(nums(ya!), nums(ys!), 1e-13);
    expectNear(nums(yt!), nums(ys!), 1e-13);
    const g = (await vjp(oneNode('eigh_values', [n, n]), { a: tensor('FP64', [n, n], a) }, { y: tensor('FP64', [n], [1, -2, 0.5, 3]) }, ['a'])).gradients.a!;
    const gv = nums(g);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(gv[i * n + j]).toBeCloseTo(gv[j * n + i]!, 14);
  });

  it('eigh_vectors: orthonormal columns that rebuild the symmetric part, in the order of the values', async () => {
    const r = rng(11);
    const n = 5;
    const a = randomMatrix(r, n * n);
    const s = a.map((v, i) => (v + a[(i % n) * n + Math.floor(i / n)]!) / 2);
    const lam = nums(await run('eigh_values', tensor('FP64', [n, n], a)));
    const v = nums(await run('eigh_vectors', tensor('FP64', [n, n], a)));
    expectNear(matmul(v, v, n, n, n, true, false), eye(n), 1e-13);
    const vl = v.map((x, i) => x * lam[i % n]!);
    expectNear(matmul(vl, v, n, n, n, false, true), s, 1e-13);
  });

  it('a large matrix (LAPACK threads on its own) rebuilds from its decomposition', async () => {
    const r = rng(3);
    const n = 160;
    const a = randomMatrix(r, n * n);
    const s = a.map((v, i) => (v + a[(i % n) * n + Math.floor(i / n)]!) / 2);
    const lam = nums(await run('eigh_values', tensor('FP64', [n, n], s)));
    for (let i = 1; i < n; i++) expect(lam[i]!).toBeGreaterThanOrEqual(lam[i - 1]!);
    const v = nums(await run('eigh_vectors', tensor('FP64', [n, n], s)));
    const vl = v.map((x, i) => x * lam[i % n]!);
    expectNear(matmul(vl, v, n, n, n, false, true), s, 1e-11);
  });
});

describe('svd_values', () => {
  it('singular values in descending order for tall, wide and batched matrices', async () => {
    expectNear(nums(await run('svd_values', tensor('FP64', [3, 3], [-3, 0, 0, 0, 1, 0, 0, 0, 2]))), [3, 2, 1], 1e-14);
    expectNear(nums(await run('svd_values', tensor('FP64', [3, 2], [3, 0, 0, -4, 0, 0]))), [4, 3], 1e-14);
    const wide = await run('svd_values', tensor('FP32', [2, 1, 3], [0, 2, 0, 1, 1, 1]));
    expect(wide.shape).toEqual([2, 1]);
    expectNear(nums(wide), [2, Math.sqrt(3)], 1e-6);
  });

  it('svd_vectors: U over V, orthonormal, rebuilding a as U diag(s) Vᵀ', async () => {
    const r = rng(5);
    for (const [m, n] of [[5, 3], [3, 5], [4, 4]] as const) {
      const k = Math.min(m, n);
      const a = randomMatrix(r, m * n);
      const s = nums(await run('svd_values', tensor('FP64', [m, n], a)));
      const w = await run('svd_vectors', tensor('FP64', [m, n], a));
      expect(w.shape).toEqual([m + n, k]);
      const all = nums(w);
      const u = all.slice(0, m * k);
      const v = all.slice(m * k);
      expectNear(matmul(u, u, k, m, k, true, false), eye(k), 1e-13);
      expectNear(matmul(v, v, k, n, k, true, false), eye(k), 1e-13);
      const us = u.map((x, i) => x * s[i % k]!);
      expectNear(matmul(us, v, m, k, n, false, true), a, 1e-13);
    }
  });
});

describe('qr_q, qr_r', () => {
  it('Q has orthonormal columns, R is upper triangular, QR rebuilds a (tall, square, batched)', async () => {
    const r = rng(13);
    for (const [B, m, n] of [[1, 6, 3], [1, 4, 4], [5, 7, 2]] as const) {
      const a = randomMatrix(r, B * m * n);
      const shape = B === 1 ? [m, n] : [B, m, n];
      const q = await run('qr_q', tensor('FP64', shape, a));
      const rr = await run('qr_r', tensor('FP64', shape, a));
      expect(q.shape).toEqual(B === 1 ? [m, n] : [B, m, n]);
      expect(rr.shape).toEqual(B === 1 ? [n, n] : [B, n, n]);
      for (let b = 0; b < B; b++) {
        const qb = nums(q).slice(b * m * n, (b + 1) * m * n);
        const rb = nums(rr).slice(b * n * n, (b + 1) * n * n);
        expectNear(matmul(qb, qb, n, m, n, true, false), eye(n), 1e-13);
        rb.forEach((v, i) => { if (Math.floor(i / n) > i % n) expect(v).toBe(0); });
        expectNear(matmul(qb, rb, m, n, n), a.slice(b * m * n, (b + 1) * m * n), 1e-13);
      }
    }
  });

  it("LAPACK's Householder signs: the first column of Q points against a's first column when a[0][0] > 0", async () => {
    // geqrf reflects a's first column onto -sign(a00)·|a_1|·e_1: R[0][0] = -5, Q's first column -a_1 / 5; Q = H1 (the last
    // column of a 2 x 2 needs no reflector), a reflection, so its second column makes det(Q) = -1
    const a = tensor('FP64', [2, 2], [3, 1, 4, 2]);
    expectNear(nums(await run('qr_r', a)), [-5, -2.2, 0, 0.4], 1e-14);
    expectNear(nums(await run('qr_q', a)), [-0.6, -0.8, -0.8, 0.6], 1e-14);
  });

  it('a wide matrix is refused before running', async () => {
    const e = await failure(run('qr_q', tensor('FP32', [2, 3], [1, 2, 3, 4, 5, 6])));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/node "y" \(qr_q\).*m >= n/);
  });
});

describe('GraphBuilder', () => {
  it('eighValues, svdValues, qrQ, qrR: the nuclear norm of a symmetric positive matrix is its trace, with gradient I', async () => {
    const b = new GraphBuilder();
    const a = b.input('a', [3, 3], 'FP64');
    const nuclear = a.svdValues().sum().as('nuclear');
    const top = a.eighValues().as('eig');
    const q = a.qrQ().as('q');
    const rr = a.qrR().as('r');
    const g = b.output(nuclear, top, q, rr).build();
    const x = tensor('FP64', [3, 3], [4, 1, 0, 1, 3, 0.5, 0, 0.5, 2]);
    const r = await grad(g, { a: x }, 'nuclear', ['a']);
    expect(r.outputs.nuclear!.data[0]).toBeCloseTo(9, 12);
    expectNear(nums(r.gradients.a!), eye(3), 1e-12);
    const outs = (await evaluate(g, { a: x })).outputs;
    expect(nums(outs.eig!).reduce((p, v) => p + v, 0)).toBeCloseTo(9, 12);
    expectNear(matmul(nums(outs.q!), nums(outs.r!), 3, 3, 3), nums(x), 1e-13);
  });
});

describe('batches, non-finite members, empty shapes', () => {
  it('a batch spread over threads gives exactly the numbers of one matrix at a time', async () => {
    const r = rng(21);
    const B = 300, n = 8;
    const data = randomMatrix(r, B * n * n);
    for (const op of ['eigh_values', 'svd_values', 'eigh_vectors'] as const) {
      const all = nums(await run(op, tensor('FP64', [B, n, n], data)));
      const per = all.length / B;
      for (const b of [0, 1, 150, 299]) {
        const one = nums(await run(op, tensor('FP64', [n, n], data.slice(b * n * n, (b + 1) * n * n))));
        expect(all.slice(b * per, (b + 1) * per), `${op} member ${b}`).toEqual(one);
      }
    }
  });

  it('a member with a non-finite entry gives NaN, the others their values', async () => {
    const a = tensor('FP64', [3, 2, 2], [2, 1, 1, 2, 1, Number.NaN, 0, 1, 3, 0, 0, Number.POSITIVE_INFINITY]);
    for (const op of ['eigh_values', 'svd_values']) {
      const y = nums(await run(op, a));
      expect(y.slice(0, 2).every(Number.isFinite)).toBe(true);
      expect(y.slice(2).every(Number.isNaN), op).toBe(true);
    }
  });

  it('empty batches and empty matrices', async () => {
    expect((await run('eigh_values', tensor('FP64', [0, 3, 3], []))).shape).toEqual([0, 3]);
    expect((await run('eigh_values', tensor('FP64', [2, 0, 0], []))).shape).toEqual([2, 0]);
    expect((await run('svd_values', tensor('FP64', [3, 0], []))).shape).toEqual([0]);
    expect((await run('svd_vectors', tensor('FP32', [2, 3, 0], []))).shape).toEqual([2, 3, 0]);
  });
});

describe('derivative graphs for unknown dims', () => {
  it('eigh_values and qr need only the rank: one gradient graph serves every size', async () => {
    for (const op of ['eigh_values', 'qr_r']) {
      const g: Graph = {
        inputs: { a: { shape: [null, null], datatype: 'FP64' } },
        nodes: [{ name: 'y', op, inputs: ['a'] }, { name: 's', op: 'sum', inputs: ['y'] }],
        outputs: ['s'],
      };
      const back = transform(g, { transform: 'grad', of: 's', wrt: ['a'] });
      for (const n of [2, 4]) {
        const a = tensor('FP64', [n, n], Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 2 + i : 0.3 / (1 + i))));
        const viaGraph = (await evaluate(back, { a })).outputs['grad:a']!;
        const direct = (await grad(g, { a }, 's', ['a'])).gradients.a!;
        expectNear(nums(viaGraph), nums(direct), 1e-12);
      }
    }
  });

  it("svd_values' derivative needs the matrix dims: asked for with unknown ones, a clear SHAPE_MISMATCH", async () => {
    const g: Graph = {
      inputs: { a: { shape: [null, 3], datatype: 'FP64' } },
      nodes: [{ name: 'y', op: 'svd_values', inputs: ['a'] }, { name: 's', op: 'sum', inputs: ['y'] }],
      outputs: ['s'],
    };
    const e = await failure(() => transform(g, { transform: 'grad', of: 's', wrt: ['a'] }));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/svd_values.*matrix dims/);
  });
});

describe('errors', () => {
  it('non-square, rank < 2 and integer inputs are refused before running, naming the node', async () => {
    const sq = await failure(run('eigh_values', tensor('FP64', [2, 3], [1, 2, 3, 4, 5, 6])));
    expect(sq.code).toBe('SHAPE_MISMATCH');
    expect(sq.message).toMatch(/node "y" \(eigh_values\).*not square/);
    expect((await failure(run('svd_values', tensor('FP64', [3], [1, 2, 3])))).code).toBe('SHAPE_MISMATCH');
    expect((await failure(run('svd_values', tensor('INT32', [2, 2], [1, 2, 3, 4])))).code).toBe('DATATYPE_MISMATCH');
  });

  describe('a LAPACK failure to converge', () => {
    afterEach(async () => {
      const mod = await import('../../src/kernels.js');
      setKernels(mod.kernels);
    });

    it('is 422 NO_CONVERGENCE naming the node and the batch index', async () => {
      const real = await loadKernels();
      const refuse = (): never => {
        throw Object.assign(new Error("the matrix at batch index [1, 0]: LAPACK's syevd did not converge (info 3)"), { code: 'NO_CONVERGENCE' });
      };
      // no native programs: the failing kernel runs node by node, the path every kernel error shares
      const failing = { ...real, Program: undefined, spectral: refuse, async: { ...real.async, spectral: async () => refuse() } } as unknown as Kernels;
      setKernels(failing);
      // a shape no other test uses, so no plan traced earlier (with the real kernels) is reused
      const e = await failure(run('eigh_values', tensor('FP64', [2, 1, 2, 2], [1, 0, 0, 2, 3, 1, 1, 3])));
      expect(e.code).toBe('NO_CONVERGENCE');
      expect(e.status).toBe(422);
      expect(e.message).toMatch(/node "y" \(eigh_values\).*batch index \[1, 0\]/);
      expect(e.errors?.[0]?.path).toMatch(/nodes\[0\]/);
    });

    it('a build without LAPACK answers 501 NOT_IMPLEMENTED naming the node, not 500', async () => {
      const real = await loadKernels();
      const refuse = (): never => {
        throw Object.assign(new Error('eigh_values is not supported in this build (it was built without LAPACK)'), { code: 'UNSUPPORTED' });
      };
      const failing = { ...real, Program: undefined, spectral: refuse, async: { ...real.async, spectral: async () => refuse() } } as unknown as Kernels;
      setKernels(failing);
      const e = await failure(run('eigh_values', tensor('FP64', [3, 1, 2, 2], [1, 0, 0, 2, 3, 1, 1, 3, 2, 0, 0, 2])));
      expect(e.code).toBe('NOT_IMPLEMENTED');
      expect(e.status).toBe(501);
      expect(e.message).toMatch(/node "y" \(eigh_values\).*without LAPACK/);
    });
  });
});
