/**
 * The reduced QR of a (..., m, n), m >= n, through LAPACK (geqrf + orgqr, native/linalg_spectral.cpp): `qr_q`
 * (..., m, n) with orthonormal columns and `qr_r` (..., n, n) upper triangular, with LAPACK's Householder signs (R's
 * diagonal may be negative; PyTorch's torch.linalg.qr has the same ones).
 *
 * Derivatives (a = QR with R invertible, i.e. a of full column rank), written with ops and `triangular_solve`:
 *   forward   X = dA R⁻¹, C = Qᵀ X, Ω = tril(C, −1) − tril(C, −1)ᵀ;  dR = (C − Ω) R,  dQ = X + Q (Ω − C)
 *   reverse   N = R̄ Rᵀ − Qᵀ Q̄, M = triu(N) + triu(N, 1)ᵀ;  Ā = (Q̄ + Q M) R⁻ᵀ
 * (qr_q's rule is the reverse one with R̄ = 0, qr_r's with Q̄ = 0). Each rule uses the other op, so every order is
 * defined wherever a has full column rank.
 */
import { z } from 'zod';
import type { Emitter, OpDef, Ref } from './types.js';
import { failNode, fmt } from './common.js';
import { matrixDims, mm, mT, runSpectral, vmapSame } from './linalg_spectral.js';

type NoAttrs = Record<string, never>;
const noAttrs = z.strictObject({}) as unknown as z.ZodType<NoAttrs>;

const CONVENTIONS = [
  "LAPACK's Householder signs: R's diagonal may be negative (as torch.linalg.qr)",
  'a needs at least as many rows as columns (m >= n); the gradient assumes full column rank',
  'a matrix with a non-finite entry gives NaN',
];

const SAMPLES = [
  { inputs: [{ shape: [3, 2], values: [1.5, 0.3, -0.4, 0.8, 0.6, -1.1] }], note: 'tall 3 x 2' },
  { inputs: [{ shape: [3, 3], values: [2, 0.3, -0.5, 0.1, -1, 0.4, 0.6, 0.2, 0.5] }], note: 'square 3 x 3' },
  {
    inputs: [{ shape: [2, 4, 3], values: [1.2, -0.3, 0.4, 0.9, -0.8, 0.5, 0.7, 1.4, -1.1, 0.2, 0.3, -0.6, -0.5, 1.1, 0.2, 0.8, 0.4, -0.9, 0.3, -0.2, 1.3, 1, 0.6, 0.1] }],
    note: 'batched 4 x 3',
  },
];

/** x R⁻¹ (right: solves y R = x) or x R⁻ᵀ (solves y Rᵀ = x, Rᵀ lower triangular). */
function rightSolve(e: Emitter, r: Ref, x: Ref, transposed: boolean): Ref {
  const a = transposed ? mT(e, r) : r;
  return e.op('triangular_solve', [a, x], { lower: transposed, unit_diagonal: false, left: false });
}

/** Ā = (Q̄ + Q M) R⁻ᵀ with M = triu(N) + triu(N, 1)ᵀ, N = R̄ Rᵀ − Qᵀ Q̄ (either cotangent may be absent). */
function qrCotangent(e: Emitter, q: Ref, r: Ref, gq: Ref | null, gr: Ref | null): Ref {
  let nn: Ref;
  if (gr !== null && gq !== null) nn = e.op('sub', [mm(e, gr, r, false, true), mm(e, q, gq, true, false)]);
  else if (gr !== null) nn = mm(e, gr, r, false, true);
  else nn = e.op('neg', [mm(e, q, gq!, true, false)]);
  const sym = e.op('add', [e.op('triu', [nn], { k: 0 }), mT(e, e.op('triu', [nn], { k: 1 }))]);
  const qm = mm(e, q, sym);
  return rightSolve(e, r, gq === null ? qm : e.op('add', [gq, qm]), true);
}

/** C = Qᵀ dA R⁻¹, X = dA R⁻¹ and Ω = tril(C, −1) − tril(C, −1)ᵀ of the forward rule. */
function qrTangentParts(e: Emitter, q: Ref, r: Ref, t: Ref): { x: Ref; c: Ref; omega: Ref } {
  const x = rightSolve(e, r, t, false);
  const c = mm(e, q, x, true, false);
  const l = e.op('tril', [c], { k: -1 });
  return { x, c, omega: e.op('sub', [l, mT(e, l)]) };
}

function qrInfer(which: 'q' | 'r') {
  return ([a]: Parameters<OpDef['infer']>[0], _attrs: NoAttrs, ctx: Parameters<OpDef['infer']>[2]) => {
    const [m, n] = matrixDims(a!, ctx);
    if (m !== null && n !== null && m < n) {
      failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a!.shape)} has fewer rows than columns (${m} < ${n}); the reduced QR needs m >= n`);
    }
    return { shape: [...a!.shape.slice(0, -2), which === 'q' ? m : n, n], dtype: a!.dtype };
  };
}

const flopsOf = (a: { shape: readonly (number | null)[] }): number => {
  let f = 4 * (a.shape.at(-2) ?? 0) * (a.shape.at(-1) ?? 0) ** 2;
  for (const d of a.shape.slice(0, -2)) f *= d ?? 0;
  return f;
};

export const qr_q: OpDef<NoAttrs> = {
  name: 'qr_q',
  inputs: ['a'],
  attrs: noAttrs,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'Q of the reduced QR of a (..., m, n), m >= n (torch.linalg.qr(a).Q): (..., m, n) with orthonormal columns.',
  conventions: CONVENTIONS,
  infer: qrInfer('q'),
  run: ([a], _attrs, k) => runSpectral('qr_q', a!, k),
  flops: ([a]) => 2 * flopsOf(a!),
  vjp({ e, inputs: [a], output: q, g }) {
    return [qrCotangent(e, q, e.op('qr_r', [a!]), g, null)];
  },
  jvp({ e, inputs: [a], output: q, tangents: [t] }) {
    const { x, c, omega } = qrTangentParts(e, q, e.op('qr_r', [a!]), t!);
    return e.op('add', [x, mm(e, q, e.op('sub', [omega, c]))]);
  },
  vmap: vmapSame,
  samples: SAMPLES,
};

export const qr_r: OpDef<NoAttrs> = {
  name: 'qr_r',
  inputs: ['a'],
  attrs: noAttrs,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'R of the reduced QR of a (..., m, n), m >= n (torch.linalg.qr(a).R): (..., n, n) upper triangular.',
  conventions: CONVENTIONS,
  infer: qrInfer('r'),
  run: ([a], _attrs, k) => runSpectral('qr_r', a!, k),
  flops: ([a]) => flopsOf(a!),
  vjp({ e, inputs: [a], output: r, g }) {
    return [qrCotangent(e, e.op('qr_q', [a!]), r, null, g)];
  },
  jvp({ e, inputs: [a], output: r, tangents: [t] }) {
    const { c, omega } = qrTangentParts(e, e.op('qr_q', [a!]), r, t!);
    return mm(e, e.op('sub', [c, omega]), r);
  },
  vmap: vmapSame,
  samples: SAMPLES,
};

export const ops: OpDef[] = [qr_q, qr_r];
