/**
 * Linear algebra on one square matrix (OPS.md v3): `inv`, `cholesky`, `det`, `logabsdet`, and the internal `cofactor`
 * (det's derivative, exact at singular matrices) and `sym_tril` (cholesky's VJP in one pass). One native kernel family runs them all (native/op_tables.h
 * GS_MATRIX_OPS, LAPACK). Their derivative rules are written with ops (Giles 2008): inv's with matmuls, cholesky's with
 * triangular solves, det's with the cofactor matrix, logabsdet's with the inverse.
 */
import { z } from 'zod';
import type { Emitter, InferContext, OpDef, Ref, ValueMeta } from './types.js';
import { failNode, fmt, FP, inputAt, needDtype } from './common.js';
import { mT, WELL_2x3, WELL_3 } from './linalg_solve.js';

type NoAttrs = Record<string, never>;
const noAttrs = z.strictObject({}) as unknown as z.ZodType<NoAttrs>;

function squareInfer(a: ValueMeta, ctx: InferContext, matrixOut: boolean): ValueMeta {
  needDtype(a.dtype, 'a', FP, ctx);
  const r = a.shape.length;
  if (r < 2) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a.shape)} must be a (batch of) square matrices (rank >= 2)`, inputAt(0));
  const [m, n] = [a.shape[r - 2]!, a.shape[r - 1]!];
  if (m !== null && n !== null && m !== n) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a.shape)} is not square (${m} x ${n})`, inputAt(0));
  return { shape: matrixOut ? [...a.shape] : a.shape.slice(0, -2), dtype: a.dtype };
}

/** n³ per matrix of a. */
function cubeFlops([a]: ValueMeta[]): number {
  let f = 1;
  for (const d of a!.shape) f *= d ?? 0;
  return f * (a!.shape[a!.shape.length - 1] ?? 0);
}

const mm = (e: Emitter, x: Ref, y: Ref, ta = false, tb = false): Ref => e.op('matmul_t', [x, y], { trans_a: ta, trans_b: tb });
const perMatrix = (e: Emitter, v: Ref): Ref => e.op('unsqueeze', [v], { axes: [-1, -2] });
const inner = (e: Emitter, x: Ref, y: Ref): Ref => e.op('sum', [e.op('mul', [x, y])], { axes: [-2, -1], keepdims: false });
const half = (e: Emitter, x: Ref): Ref => e.op('mul', [x, e.scalar(0.5, x.dtype)]);

/** An op of one (batch of) square matrices run by the GS_MATRIX_OPS kernel of the same name. */
function matrixOp(def: Omit<OpDef<NoAttrs>, 'inputs' | 'attrs' | 'outputDatatype' | 'differentiable' | 'infer' | 'run' | 'flops' | 'vmap'>, matrixOut: boolean): OpDef<NoAttrs> {
  return {
    ...def,
    inputs: ['a'],
    attrs: noAttrs,
    outputDatatype: 'same as a',
    differentiable: true,
    infer: ([a], _attrs, ctx) => squareInfer(a!, ctx, matrixOut),
    async run([a], _attrs, k) {
      const r = await k.matrixOp(def.name, a!.data as Float64Array, [...a!.shape]);
      return { dtype: a!.dtype, shape: r.shape, data: r.data };
    },
    flops: cubeFlops,
    // the matrix axes stay the last two under a leading batch axis
    vmap({ b, inputs: [a] }) {
      b.same([a!.name]);
      return true;
    },
  };
}

const SPD_3 = [4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2.5];

const inv = matrixOp({
  name: 'inv',
  doc: 'The inverse of a (..., n, n), batched over leading axes (torch.linalg.inv); LU with partial pivoting.',
  conventions: ['a matrix with an exactly zero LU pivot is SINGULAR_MATRIX (found while running), naming the batch index'],
  // y = a⁻¹: ga = -yᵀ g yᵀ, dy = -y da y
  vjp: ({ e, output: y, g }) => [e.op('neg', [mm(e, mm(e, y, g, true, false), y, false, true)])],
  jvp: ({ e, output: y, tangents: [t] }) => e.op('neg', [mm(e, mm(e, y, t!), y)]),
  samples: [
    { inputs: [{ shape: [3, 3], values: WELL_3 }] },
    { inputs: [{ shape: [2, 3, 3], values: WELL_2x3 }], note: 'batched' },
  ],
}, true);

const cholesky = matrixOp({
  name: 'cholesky',
  doc: 'The lower Cholesky factor L (L·Lᵀ = a) of a symmetric positive-definite a (..., n, n), batched over leading axes (torch.linalg.cholesky). a is taken as symmetric: the factor is that of (a + aᵀ) / 2, which for a symmetric a is LAPACK\'s reading of its lower triangle.',
  conventions: [
    'the gradient is symmetric (that of the factor of (a + aᵀ) / 2)',
    'a whose symmetric part has a non-positive leading minor is NOT_POSITIVE_DEFINITE (found while running), naming the batch index',
  ],
  vjp({ e, output: l, g }) {
    // P = Φ-symmetrized tril(Lᵀ g) = (tril(M) + tril(M, -1)ᵀ) / 2 with M = Lᵀ g, one sym_tril pass;
    // ga = L⁻ᵀ P L⁻¹ (symmetric), by two triangular solves
    const p = e.op('sym_tril', [mm(e, l, g, true, false)], { adjoint: false });
    const left = e.op('triangular_solve', [mT(e, l), p], { lower: false, unit_diagonal: false, left: true });
    return [e.op('triangular_solve', [l, left], { lower: true, unit_diagonal: false, left: false })];
  },
  jvp({ e, output: l, tangents: [t] }) {
    // dL = L Φ(L⁻¹ dS L⁻ᵀ), dS = (da + daᵀ) / 2, Φ = the lower triangle with the diagonal halved
    const ds = half(e, e.op('add', [t!, mT(e, t!)]));
    const y = e.op('triangular_solve', [l, ds], { lower: true, unit_diagonal: false, left: true });
    const z2 = e.op('triangular_solve', [mT(e, l), y], { lower: false, unit_diagonal: false, left: false });
    const phi = half(e, e.op('add', [e.op('tril', [z2], { k: 0 }), e.op('tril', [z2], { k: -1 })]));
    return mm(e, l, phi);
  },
  samples: [
    // spd: whatever values a test draws, the input is m·mᵀ + n·I (a batching test draws fresh members)
    { inputs: [{ shape: [3, 3], values: SPD_3, spd: true }], note: 'symmetric positive definite' },
    { inputs: [{ shape: [2, 3, 3], spd: true, range: [-1, 1] }], note: 'batched' },
    { inputs: [{ shape: [1, 1], spd: true }], note: '1 x 1' },
  ],
}, true);

interface SymTrilAttrs {
  adjoint: boolean;
}

/** Cholesky's VJP in one pass: the symmetric matrix of x's lower triangle, halved; or its adjoint. */
const symTril: OpDef<SymTrilAttrs> = {
  name: 'sym_tril',
  inputs: ['a'],
  internal: true,
  attrs: z.strictObject({ adjoint: z.boolean().default(false).describe('the adjoint map: (tril(a) + triu(a, 1)ᵀ) / 2') }),
  outputDatatype: 'same as a',
  differentiable: true,
  doc: '(tril(a) + tril(a, -1)ᵀ) / 2 for a (..., n, n): the symmetric matrix of a\'s lower triangle, halved (cholesky\'s VJP in one pass); with adjoint, (tril(a) + triu(a, 1)ᵀ) / 2: a\'s upper triangle folded onto the lower one, halved, zeros above.',
  infer: ([a], _attrs, ctx) => squareInfer(a!, ctx, true),
  async run([a], attrs, k) {
    const r = await k.matrixOp(attrs.adjoint ? 'sym_tril_adjoint' : 'sym_tril', a!.data as Float64Array, [...a!.shape]);
    return { dtype: a!.dtype, shape: r.shape, data: r.data };
  },
  flops: ([a]) => a!.shape.reduce<number>((p, d) => p * (d ?? 0), 1),
  // linear: the VJP is the adjoint map, the JVP the map itself
  vjp: ({ e, g, attrs }) => [e.op('sym_tril', [g], { adjoint: !attrs.adjoint })],
  jvp: ({ e, tangents: [t], attrs }) => e.op('sym_tril', [t!], { adjoint: attrs.adjoint }),
  vmap({ b, inputs: [a] }) {
    b.same([a!.name]);
    return true;
  },
  samples: [
    { inputs: [{ shape: [3, 3] }], attrs: { adjoint: false } },
    { inputs: [{ shape: [2, 4, 4] }], attrs: { adjoint: true }, note: 'adjoint, batched' },
    { inputs: [{ shape: [1, 1] }], attrs: { adjoint: false }, note: '1 x 1' },
  ],
};

const det = matrixOp({
  name: 'det',
  doc: 'The determinant of a (..., n, n), one number per matrix (torch.linalg.det); 0 for a singular matrix.',
  conventions: [
    'the gradient is the cofactor matrix, exact at singular matrices too (through an SVD there)',
    'second order at an exactly singular matrix divides by det = 0 (not defined there)',
  ],
  vjp: ({ e, inputs: [a], g }) => [e.op('mul', [perMatrix(e, g), e.op('cofactor', [a!])])],
  jvp: ({ e, inputs: [a], tangents: [t] }) => inner(e, e.op('cofactor', [a!]), t!),
  samples: [
    { inputs: [{ shape: [3, 3], values: WELL_3 }] },
    { inputs: [{ shape: [2, 3, 3], values: WELL_2x3 }], note: 'batched' },
  ],
}, false);

const cofactor = matrixOp({
  name: 'cofactor',
  internal: true,
  doc: 'The cofactor matrix det(a)·a⁻ᵀ of a (..., n, n) (the gradient of det), exact at singular matrices too: through an LU, or an SVD when a pivot is exactly zero.',
  // C = det(a) a⁻ᵀ: dC = (<C, da> C - C daᵀ C) / det(a), and its transpose ga = (<g, C> C - C gᵀ C) / det(a)
  vjp({ e, inputs: [a], output: c, g }) {
    const d = perMatrix(e, e.op('det', [a!]));
    const num = e.op('sub', [e.op('mul', [perMatrix(e, inner(e, g, c)), c]), mm(e, mm(e, c, g, false, true), c)]);
    return [e.op('div', [num, d])];
  },
  jvp({ e, inputs: [a], output: c, tangents: [t] }) {
    const d = perMatrix(e, e.op('det', [a!]));
    const num = e.op('sub', [e.op('mul', [perMatrix(e, inner(e, c, t!)), c]), mm(e, mm(e, c, t!, false, true), c)]);
    return e.op('div', [num, d]);
  },
  samples: [
    { inputs: [{ shape: [3, 3], values: WELL_3 }] },
    { inputs: [{ shape: [2, 3, 3], values: WELL_2x3 }], note: 'batched' },
  ],
}, true);

const logabsdet = matrixOp({
  name: 'logabsdet',
  doc: 'log |det(a)| of a (..., n, n), one number per matrix (torch.linalg.slogdet\'s second output); -Infinity for a singular matrix.',
  conventions: ['the gradient is a⁻ᵀ, which a singular matrix does not have: its gradient is SINGULAR_MATRIX'],
  vjp: ({ e, inputs: [a], g }) => [e.op('mul', [perMatrix(e, g), mT(e, e.op('inv', [a!]))])],
  jvp: ({ e, inputs: [a], tangents: [t] }) => inner(e, mT(e, e.op('inv', [a!])), t!),
  samples: [
    { inputs: [{ shape: [3, 3], values: WELL_3 }] },
    { inputs: [{ shape: [2, 3, 3], values: WELL_2x3.map((v, i) => (i % 4 === 0 ? -v : v)) }], note: 'batched, negative determinants' },
  ],
}, false);

export const ops: OpDef[] = [inv, cholesky, det, logabsdet, cofactor, symTril];
