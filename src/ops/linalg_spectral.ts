/**
 * Spectral linear algebra through LAPACK (native/linalg_spectral.cpp), batched over leading axes, FP32 and FP64:
 * `eigh_values` (eigenvalues of the symmetric part, ascending), `svd_values` (singular values, descending) and the
 * internal ops their derivatives are written with, `eigh_vectors` (the eigenvectors as columns) and `svd_vectors`
 * (the reduced U stacked over the reduced V, so one decomposition serves both). The QR ops live in linalg_qr.ts.
 *
 * Derivatives are the standard matrix derivative results, written with ops so they differentiate again:
 *   eigh_values   dλ = diag(Vᵀ dA V)                      Ā = V diag(ḡ) Vᵀ
 *   eigh_vectors  dV = V (F ∘ sym(Vᵀ dA V))               Ā = sym(V (F ∘ Vᵀ V̄) Vᵀ),   F_ij = 1 / (λ_j − λ_i), F_ii = 0
 *   svd_values    ds = diag(Uᵀ dA V)                      Ā = U diag(ḡ) Vᵀ
 *   svd_vectors   the reduced-SVD rule with G_ij = 1 / (s_j² − s_i²) and the terms of the complements of U and V
 * Second order: the VJP of eigh_values / svd_values uses eigh_vectors / svd_vectors, whose own rules use the values
 * and vectors again, so every order is defined where the eigenvalues (singular values) are distinct (and nonzero for
 * svd_vectors); at a repeated eigenvalue F is unbounded and the derivatives of the vectors are not defined.
 */
import { z } from 'zod';
import { fail } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import type { Dim, SymShape } from '../tensor/shape.js';
import type { Emitter, InferContext, OpDef, OpKernels, Ref, ValueMeta, VmapArgs } from './types.js';
import { failNode, fmt, FP, needDtype } from './common.js';

type NoAttrs = Record<string, never>;
const noAttrs = z.strictObject({}) as unknown as z.ZodType<NoAttrs>;

// ---- shapes ----

/** The matrix dims (m, n) of x (..., m, n), after checking the datatype and rank. */
export function matrixDims(x: ValueMeta, ctx: InferContext): [Dim, Dim] {
  needDtype(x.dtype, 'a', FP, ctx);
  const r = x.shape.length;
  if (r < 2) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(x.shape)} has rank ${r}; ${ctx.op} works on matrices (the last two axes) and needs rank >= 2`);
  return [x.shape[r - 2]!, x.shape[r - 1]!];
}

export function squareOrFail(x: ValueMeta, ctx: InferContext): Dim {
  const [m, n] = matrixDims(x, ctx);
  if (m !== null && n !== null && m !== n) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(x.shape)} is not square (${m} x ${n})`);
  return m ?? n;
}

const batchOf = (x: ValueMeta): SymShape => x.shape.slice(0, -2);
const minDim = (m: Dim, n: Dim): Dim => (m === null || n === null ? null : Math.min(m, n));

/** A concrete dim a rule needs (the split of svd_vectors' output), or a clear error asking for it. */
export function knownDim(d: Dim, what: string): number {
  if (d === null) fail('SHAPE_MISMATCH', `the derivative of ${what} needs the matrix dims of its operand; declare them in the graph's input shapes`);
  return d;
}

/** Runs one op of the native spectral family. */
export async function runSpectral(op: string, x: { dtype: DType; shape: readonly number[]; data: unknown }, k: OpKernels) {
  const r = await k.spectral(op, x.data as Float64Array, [...x.shape]);
  return { dtype: x.dtype, shape: r.shape, data: r.data };
}

/** Every op here works on the last two axes, so a leading batch axis is one more batch dim. */
export function vmapSame({ b, inputs: [x] }: VmapArgs): boolean {
  b.same([x!.name]);
  return true;
}

const cube = (m: Dim, n: Dim, batch: SymShape): number => {
  let f = Math.max(m ?? 0, n ?? 0) * (minDim(m, n) ?? 0) ** 2;
  for (const d of batch) f *= d ?? 0;
  return f;
};

// ---- derivative-graph idioms (matrices are the last two axes) ----

/** xᵀ over the last two axes. */
export function mT(e: Emitter, x: Ref): Ref {
  const r = x.shape.length;
  const perm = Array.from({ length: r }, (_, i) => (i < r - 2 ? i : 2 * r - 3 - i));
  return e.op('transpose', [x], { perm });
}

/** op(a)·op(b) over the last two axes, transposes folded into the product. */
export function mm(e: Emitter, a: Ref, b: Ref, ta = false, tb = false): Ref {
  return e.op('matmul_t', [a, b], { trans_a: ta, trans_b: tb });
}

/** (x + xᵀ) / 2 */
export function sym(e: Emitter, x: Ref): Ref {
  return e.op('mul', [e.op('add', [x, mT(e, x)]), e.scalar(0.5, x.dtype)]);
}

/** The identity shaped like the square (..., n, n) value `like`. */
export function eyeLike(e: Emitter, like: Ref): Ref {
  return e.op('tril', [e.op('triu', [e.op('ones_like', [like])], { k: 0 })], { k: 0 });
}

/** x scaled column j by v_j: x · diag(v) */
export const scaleCols = (e: Emitter, x: Ref, v: Ref): Ref => e.op('mul', [x, e.op('unsqueeze', [v], { axes: [-2] })]);
/** x scaled row i by v_i: diag(v) · x */
export const scaleRows = (e: Emitter, x: Ref, v: Ref): Ref => e.op('mul', [x, e.op('unsqueeze', [v], { axes: [-1] })]);

/**
 * F ∘ M with F_ij = 1 / (λ_j − λ_i) off the diagonal and 0 on it (λ distinct): the diagonal of M is dropped and the
 * difference gets 1 there, so nothing divides by zero and the graph stays differentiable.
 */
export function offDiagonalOver(e: Emitter, M: Ref, lam: Ref): Ref {
  const I = eyeLike(e, M);
  const diff = e.op('sub', [e.op('unsqueeze', [lam], { axes: [-2] }), e.op('unsqueeze', [lam], { axes: [-1] })]);
  return e.op('div', [e.op('sub', [M, e.op('mul', [M, I])]), e.op('add', [diff, I])]);
}

/** diag(Xᵀ dA Y) as a vector: Σ_i X_ij (dA Y)_ij. */
function diagOfProduct(e: Emitter, X: Ref, dA: Ref, Y: Ref): Ref {
  return e.op('sum', [e.op('mul', [X, mm(e, dA, Y)])], { axes: [-2], keepdims: false });
}

/** U and V of svd_vectors' stacked output (m rows of U over n rows of V). */
function splitUV(e: Emitter, w: Ref, m: number, n: number): [Ref, Ref] {
  const u = e.op('slice', [w], { starts: [0], ends: [m], axes: [-2] });
  const v = e.op('slice', [w], { starts: [m], ends: [m + n], axes: [-2] });
  return [u, v];
}

// ---- eigh ----

const EIGH_CONVENTIONS = [
  'a is read as its symmetric part (a + aᵀ) / 2, so the gradient is symmetric',
  'the gradient assumes distinct eigenvalues',
  'a matrix with a non-finite entry gives NaN; a LAPACK failure to converge is 422 NO_CONVERGENCE naming the node and batch index',
];

const EIGH_SAMPLES = [
  { inputs: [{ shape: [3, 3], values: [2, 0.5, -0.3, 0.5, -1, 0.4, -0.3, 0.4, 0.5] }], note: 'symmetric 3 x 3' },
  {
    inputs: [{ shape: [2, 3, 3], values: [1, -0.7, 0.2, 0.3, 3, 0.6, 0.1, 0.6, -2, 0.4, 0.1, 0.3, 0.1, -1.5, 0.2, 0.3, 0.2, 1.2] }],
    note: 'batched, not symmetric (its symmetric part is used)',
  },
  { inputs: [{ shape: [4, 4], values: [3, 0.2, 0.1, -0.4, 0.2, 1, 0.3, 0.2, 0.1, 0.3, -0.5, 0.1, -0.4, 0.2, 0.1, -2.2] }], note: '4 x 4' },
];

export const eigh_values: OpDef<NoAttrs> = {
  name: 'eigh_values',
  inputs: ['a'],
  attrs: noAttrs,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'Eigenvalues of the symmetric matrices a (..., n, n), ascending (torch.linalg.eigvalsh): shape (..., n).',
  conventions: EIGH_CONVENTIONS,
  infer([a], _attrs, ctx) {
    const n = squareOrFail(a!, ctx);
    return { shape: [...batchOf(a!), n], dtype: a!.dtype };
  },
  run: ([a], _attrs, k) => runSpectral('eigh_values', a!, k),
  flops: ([a]) => 4 * cube(a!.shape.at(-2)!, a!.shape.at(-1)!, batchOf(a!)),
  vjp({ e, inputs: [a], g }) {
    const v = e.op('eigh_vectors', [a!]);
    return [mm(e, scaleCols(e, v, g), v, false, true)];
  },
  jvp({ e, inputs: [a], tangents: [t] }) {
    const v = e.op('eigh_vectors', [a!]);
    return diagOfProduct(e, v, t!, v);
  },
  vmap: vmapSame,
  samples: EIGH_SAMPLES,
};

export const eigh_vectors: OpDef<NoAttrs> = {
  name: 'eigh_vectors',
  inputs: ['a'],
  internal: true,
  attrs: noAttrs,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: "Eigenvectors of the symmetric part of a (..., n, n) as columns, in eigh_values' order, with LAPACK's signs: the derivatives of eigh_values use them.",
  conventions: EIGH_CONVENTIONS,
  infer([a], _attrs, ctx) {
    const n = squareOrFail(a!, ctx);
    return { shape: [...batchOf(a!), n, n], dtype: a!.dtype };
  },
  run: ([a], _attrs, k) => runSpectral('eigh_vectors', a!, k),
  flops: ([a]) => 9 * cube(a!.shape.at(-2)!, a!.shape.at(-1)!, batchOf(a!)),
  vjp({ e, inputs: [a], output: v, g }) {
    const lam = e.op('eigh_values', [a!]);
    const inner = offDiagonalOver(e, mm(e, v, g, true, false), lam);
    return [sym(e, mm(e, mm(e, v, inner), v, false, true))];
  },
  jvp({ e, inputs: [a], output: v, tangents: [t] }) {
    const lam = e.op('eigh_values', [a!]);
    const inner = offDiagonalOver(e, sym(e, mm(e, mm(e, v, t!, true, false), v)), lam);
    return mm(e, v, inner);
  },
  vmap: vmapSame,
  samples: EIGH_SAMPLES,
};

// ---- svd ----

const SVD_CONVENTIONS = [
  'the gradient assumes distinct singular values; the derivatives of the singular vectors also assume nonzero ones',
  'a matrix with a non-finite entry gives NaN; a LAPACK failure to converge is 422 NO_CONVERGENCE naming the node and batch index',
];

const SVD_SAMPLES = [
  { inputs: [{ shape: [3, 2], values: [1.5, 0.3, -0.4, 0.8, 0.6, -1.1] }], note: 'tall 3 x 2' },
  { inputs: [{ shape: [2, 3], values: [0.9, -1.2, 0.4, 0.3, 0.5, 1.6] }], note: 'wide 2 x 3' },
  { inputs: [{ shape: [3, 3], values: [2, 0.3, -0.5, 0.1, -1, 0.4, 0.6, 0.2, 0.5] }], note: 'square 3 x 3' },
  {
    inputs: [{ shape: [2, 3, 2], values: [1.2, -0.3, 0.4, 0.9, -0.8, 0.5, 0.7, 1.4, -1.1, 0.2, 0.3, -0.6] }],
    note: 'batched tall',
  },
];

export const svd_values: OpDef<NoAttrs> = {
  name: 'svd_values',
  inputs: ['a'],
  attrs: noAttrs,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'Singular values of the matrices a (..., m, n), descending (torch.linalg.svdvals): shape (..., min(m, n)).',
  conventions: SVD_CONVENTIONS,
  infer([a], _attrs, ctx) {
    const [m, n] = matrixDims(a!, ctx);
    return { shape: [...batchOf(a!), minDim(m, n)], dtype: a!.dtype };
  },
  run: ([a], _attrs, k) => runSpectral('svd_values', a!, k),
  flops: ([a]) => 4 * cube(a!.shape.at(-2)!, a!.shape.at(-1)!, batchOf(a!)),
  vjp({ e, inputs: [a], g }) {
    const [u, v] = svdVectors(e, a!);
    return [mm(e, scaleCols(e, u, g), v, false, true)];
  },
  jvp({ e, inputs: [a], tangents: [t] }) {
    const [u, v] = svdVectors(e, a!);
    return diagOfProduct(e, u, t!, v);
  },
  vmap: vmapSame,
  samples: SVD_SAMPLES,
};

/** U (..., m, k) and V (..., n, k) of a, from one svd_vectors node. */
function svdVectors(e: Emitter, a: Ref): [Ref, Ref] {
  const m = knownDim(a.shape.at(-2)!, 'svd_values');
  const n = knownDim(a.shape.at(-1)!, 'svd_values');
  return splitUV(e, e.op('svd_vectors', [a]), m, n);
}

export const svd_vectors: OpDef<NoAttrs> = {
  name: 'svd_vectors',
  inputs: ['a'],
  internal: true,
  attrs: noAttrs,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: "The reduced singular vectors of a (..., m, n) with LAPACK's signs, U (m, k) stacked over V (n, k) as (..., m + n, k), k = min(m, n), in svd_values' order (a = U diag(s) Vᵀ): the derivatives of svd_values use them.",
  conventions: SVD_CONVENTIONS,
  infer([a], _attrs, ctx) {
    const [m, n] = matrixDims(a!, ctx);
    return { shape: [...batchOf(a!), m === null || n === null ? null : m + n, minDim(m, n)], dtype: a!.dtype };
  },
  run: ([a], _attrs, k) => runSpectral('svd_vectors', a!, k),
  flops: ([a]) => 8 * cube(a!.shape.at(-2)!, a!.shape.at(-1)!, batchOf(a!)),
  vjp({ e, inputs: [a], output: w, g }) {
    const m = knownDim(a!.shape.at(-2)!, 'svd_vectors');
    const n = knownDim(a!.shape.at(-1)!, 'svd_vectors');
    const k = Math.min(m, n);
    const [u, v] = splitUV(e, w, m, n);
    const [gu, gv] = splitUV(e, g, m, n);
    const s = e.op('svd_values', [a!]);
    const s2 = e.op('square', [s]);
    const ugu = mm(e, u, gu, true, false);
    const vgv = mm(e, v, gv, true, false);
    // U [ (G ∘ (UᵀŪ − ŪᵀU)) S + S (G ∘ (VᵀV̄ − V̄ᵀV)) ] Vᵀ
    const j = offDiagonalOver(e, e.op('sub', [ugu, mT(e, ugu)]), s2);
    const kk = offDiagonalOver(e, e.op('sub', [vgv, mT(e, vgv)]), s2);
    const inner = e.op('add', [scaleCols(e, j, s), scaleRows(e, kk, s)]);
    let da = mm(e, mm(e, u, inner), v, false, true);
    const rs = e.op('reciprocal', [s]);
    // the parts of Ū and V̄ outside the spans of U and V (only a tall a has the first, only a wide a the second)
    if (m > k) da = e.op('add', [da, mm(e, scaleCols(e, e.op('sub', [gu, mm(e, u, ugu)]), rs), v, false, true)]);
    if (n > k) da = e.op('add', [da, mm(e, scaleCols(e, u, rs), e.op('sub', [gv, mm(e, v, vgv)]), false, true)]);
    return [da];
  },
  jvp({ e, inputs: [a], output: w, tangents: [t] }) {
    const m = knownDim(a!.shape.at(-2)!, 'svd_vectors');
    const n = knownDim(a!.shape.at(-1)!, 'svd_vectors');
    const k = Math.min(m, n);
    const [u, v] = splitUV(e, w, m, n);
    const s = e.op('svd_values', [a!]);
    const s2 = e.op('square', [s]);
    const tv = mm(e, t!, v);
    const p = mm(e, u, tv, true, false); // Uᵀ dA V
    const pT = mT(e, p);
    // Uᵀ dU = G ∘ (P S + S Pᵀ), Vᵀ dV = G ∘ (S P + Pᵀ S)
    const ou = offDiagonalOver(e, e.op('add', [scaleCols(e, p, s), scaleRows(e, pT, s)]), s2);
    const ov = offDiagonalOver(e, e.op('add', [scaleRows(e, p, s), scaleCols(e, pT, s)]), s2);
    let du = mm(e, u, ou);
    let dv = mm(e, v, ov);
    const rs = e.op('reciprocal', [s]);
    if (m > k) du = e.op('add', [du, scaleCols(e, e.op('sub', [tv, mm(e, u, p)]), rs)]);
    if (n > k) dv = e.op('add', [dv, scaleCols(e, e.op('sub', [mm(e, t!, u, true, false), mm(e, v, pT)]), rs)]);
    return e.op('concat', [du, dv], { axis: -2 });
  },
  vmap: vmapSame,
  samples: SVD_SAMPLES,
};

export const ops: OpDef[] = [eigh_values, eigh_vectors, svd_values, svd_vectors];
