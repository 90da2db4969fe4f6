/**
 * Linear algebra, the solve family (OPS.md v3): `triangular_solve`, `solve`, `inv`, `cholesky`, `det`, `logabsdet`,
 * `lstsq`, and the internal `solve_t` (a solve with a or its transpose, b always a matrix) and `cofactor` (det's
 * derivative) the rules use. Kernels are LAPACK calls (native/linalg_solve.cpp), batched over leading axes that
 * broadcast between a and b. Every derivative rule is written with ops of this file and matmul_t / transpose / tril /
 * triu (Giles 2008, "Collected matrix derivative results"), so second order works where it is defined.
 */
import { z } from 'zod';
import { broadcastShapes, type Dim, type SymShape } from '../tensor/shape.js';
import type { BatchedValue, Batcher, Emitter, InferContext, OpDef, Ref, ValueMeta, VmapArgs } from './types.js';
import { failNode, fmt, FP, inputAt, sameDtype, sumTerms, unbroadcast } from './common.js';

// ---- shapes ----

const dimsDiffer = (x: Dim, y: Dim): boolean => x !== null && y !== null && x !== y;

function product(dims: readonly Dim[]): number {
  let n = 1;
  for (const d of dims) n *= d ?? 0;
  return n;
}

/** a is (..., n, n): its n (SHAPE_MISMATCH naming the node and shape otherwise). */
function squareOrFail(a: ValueMeta, ctx: InferContext, what = 'a'): Dim {
  const r = a.shape.length;
  if (r < 2) failNode('SHAPE_MISMATCH', ctx, `${what} ${fmt(a.shape)} must be a (batch of) matrices (rank >= 2)`, inputAt(0));
  if (dimsDiffer(a.shape[r - 1]!, a.shape[r - 2]!)) failNode('SHAPE_MISMATCH', ctx, `${what} ${fmt(a.shape)} is not square`, inputAt(0));
  return a.shape[r - 1] ?? a.shape[r - 2]!;
}

/** The broadcast batch dims of a and b (everything before their last two dims). */
function batchOrFail(a: ValueMeta, b: ValueMeta, ctx: InferContext): SymShape {
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (batch === undefined) failNode('SHAPE_MISMATCH', ctx, `batch dims of a ${fmt(a.shape)} and b ${fmt(b.shape)} do not broadcast`, inputAt(1));
  return batch;
}

/** OPS.md: solve's (and lstsq's) b is a (batch of) vector(s) when b.ndim == 1 or b.shape == a.shape[:-1]. */
export function isVectorRhs(a: readonly Dim[], b: readonly Dim[]): boolean {
  if (b.length === 1) return true;
  return b.length === a.length - 1 && b.every((d, i) => d === a[i]);
}

const fpPair = (a: ValueMeta, b: ValueMeta, ctx: InferContext) => sameDtype([a, b], ['a', 'b'], FP, ctx);

// ---- derivative-graph helpers ----

/** x with its last two axes swapped. */
export function mT(e: Emitter, x: Ref): Ref {
  const r = x.shape.length;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return e.op('transpose', [x], { perm });
}

const mm = (e: Emitter, x: Ref, y: Ref, ta = false, tb = false): Ref => e.op('matmul_t', [x, y], { trans_a: ta, trans_b: tb });
const neg = (e: Emitter, x: Ref): Ref => e.op('neg', [x]);
const half = (e: Emitter, x: Ref): Ref => e.op('mul', [x, e.scalar(0.5, x.dtype)]);
/** (x + x^T) / 2 */
const sym = (e: Emitter, x: Ref): Ref => half(e, e.op('add', [x, mT(e, x)]));
/** A per-matrix value (...) as (..., 1, 1), to scale matrices. */
const perMatrix = (e: Emitter, v: Ref): Ref => e.op('unsqueeze', [v], { axes: [-1, -2] });
/** The sum over each matrix of x * y: <x, y> per matrix, shape (...). */
const inner = (e: Emitter, x: Ref, y: Ref): Ref => e.op('sum', [e.op('mul', [x, y])], { axes: [-2, -1], keepdims: false });

/** Batching rule of ops whose operands are all (batches of) matrices: batched operands lifted to a common rank. */
function batchMatrices({ b, inputs }: VmapArgs): boolean {
  const rank = Math.max(...inputs.map((v) => v.shape.length));
  b.same(inputs.map((v) => (v.batched ? b.lift(v, rank) : v.name)));
  return true;
}

/** Batching rule of solve / lstsq: a vector b (OPS.md's rule on the unbatched shapes) goes through as a matrix. */
function batchVectorRhs(b: Batcher, a: BatchedValue, rhs: BatchedValue, out: readonly number[], matrixOp: string, attrs: Record<string, unknown>): boolean {
  let m: BatchedValue = rhs;
  if (isVectorRhs(a.shape, rhs.shape)) {
    const shape = [...rhs.shape, 1];
    m = { ...rhs, shape, name: rhs.batched ? b.reshape(rhs, [b.K, ...shape]) : b.tmp('unsqueeze', [rhs.name], { axes: [-1] }) };
  }
  const rank = Math.max(a.shape.length, m.shape.length);
  const lifted = (v: BatchedValue): number[] => (v.batched ? [b.K, ...new Array<number>(rank - v.shape.length).fill(1), ...v.shape] : [...v.shape]);
  // lstsq reads a matrix b of shape a.shape[:-1] as vectors: that rare case runs member by member instead
  if (matrixOp === 'lstsq' && isVectorRhs(lifted(a), lifted(m))) b.refuse('a batched matrix b of shape a.shape[:-1] would read as vectors');
  const names = [a, m].map((v) => (v.batched ? b.lift(v, rank) : v.name));
  b.out('reshape', [b.tmp(matrixOp, names, attrs)], { shape: [b.K, ...out] });
  return true;
}

// ---- sample matrices: well conditioned (a strong diagonal), so finite differences are accurate ----

export const WELL_3 = [2.5, 0.7, -0.4, 0.3, 1.8, 0.9, -0.6, 0.5, 3.1];
export const WELL_2x3 = [1.5, 0.2, 0.3, -0.8, 2.0, 0.1, 0.4, -0.3, 1.2, 2.2, 0.6, -0.5, 0.1, 1.4, 0.8, 0.7, -0.2, 1.9];
const TALL_4x3 = [2.1, 0.3, -0.5, 0.4, 1.7, 0.2, -0.3, 0.6, 2.4, 0.9, -0.8, 0.5];

// ---- triangular_solve ----

interface TriangularAttrs {
  lower: boolean;
  unit_diagonal: boolean;
  left: boolean;
}

/** The part of a matrix triangular_solve reads: its lower (upper) triangle, without the diagonal when unit. */
function triangleOf(e: Emitter, x: Ref, attrs: TriangularAttrs): Ref {
  const k = attrs.unit_diagonal ? (attrs.lower ? -1 : 1) : 0;
  return e.op(attrs.lower ? 'tril' : 'triu', [x], { k });
}

const triangularSolve: OpDef<TriangularAttrs> = {
  name: 'triangular_solve',
  inputs: ['a', 'b'],
  attrs: z.strictObject({
    lower: z.boolean().default(true).describe('a is lower triangular (false: upper)'),
    unit_diagonal: z.boolean().default(false).describe("a's diagonal is taken as ones (not read)"),
    left: z.boolean().default(true).describe('solve a·x = b (false: x·a = b)'),
  }),
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'x with a·x = b (left) or x·a = b for a triangular a (..., n, n) and b (..., n, k) (left) or (..., k, n); batch dims broadcast (torch.linalg.solve_triangular).',
  conventions: [
    'reads only the lower (upper) triangle of a, and not its diagonal with unit_diagonal: the rest of a gets zero gradient',
    'b is a matrix; a zero on the diagonal gives infinities (no error), as LAPACK trsm',
  ],
  infer([a, b], attrs, ctx) {
    const dtype = fpPair(a!, b!, ctx);
    const n = squareOrFail(a!, ctx);
    const r = b!.shape.length;
    if (r < 2) failNode('SHAPE_MISMATCH', ctx, `b ${fmt(b!.shape)} must be a (batch of) matrices (rank >= 2)`, inputAt(1));
    const side = attrs.left ? b!.shape[r - 2]! : b!.shape[r - 1]!;
    if (dimsDiffer(side, n)) {
      failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a!.shape)} does not fit b ${fmt(b!.shape)}: ${attrs.left ? 'a·x = b needs b (..., n, k)' : 'x·a = b needs b (..., k, n)'}`, inputAt(1));
    }
    return { shape: [...batchOrFail(a!, b!, ctx), b!.shape[r - 2]!, b!.shape[r - 1]!], dtype };
  },
  async run([a, b], attrs, k) {
    const r = await k.triangularSolve(a!.data as Float64Array, [...a!.shape], b!.data as Float64Array, [...b!.shape], attrs.lower, attrs.unit_diagonal, attrs.left);
    return { dtype: a!.dtype, shape: r.shape, data: r.data };
  },
  flops([a], out) {
    const n = a!.shape[a!.shape.length - 1] ?? 0;
    return product(out.shape) * n;
  },
  vjp({ e, inputs: [a, b], output: x, g, attrs }) {
    // left: x = a⁻¹ b, so gb = a⁻ᵀ g and ga = -gb xᵀ; right: x = b a⁻¹, so gb = g a⁻ᵀ and ga = -xᵀ gb
    const gb = e.op('triangular_solve', [mT(e, a!), g], { ...attrs, lower: !attrs.lower });
    const ga = attrs.left ? mm(e, gb, x, false, true) : mm(e, x, gb, true, false);
    return [unbroadcast(e, triangleOf(e, neg(e, ga), attrs), a!), unbroadcast(e, gb, b!)];
  },
  jvp({ e, inputs: [a], output: x, tangents: [ta, tb], attrs }) {
    // left: dx = a⁻¹ (db - da x); right: dx = (db - x da) a⁻¹, da read like a
    const dax = ta ? neg(e, attrs.left ? e.op('matmul_t', [triangleOf(e, ta, attrs), x]) : e.op('matmul_t', [x, triangleOf(e, ta, attrs)])) : null;
    const rhs = sumTerms(e, [tb, dax], x)!;
    return e.op('triangular_solve', [a!, rhs], { ...attrs });
  },
  vmap: batchMatrices,
  samples: [
    {
      inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [3, 2] }],
      note: 'lower, left (the upper triangle is not read)',
    },
    {
      inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [2, 3] }],
      attrs: { lower: false, unit_diagonal: false, left: false },
      note: 'upper, right',
    },
    {
      inputs: [{ shape: [2, 3, 3], values: WELL_2x3 }, { shape: [3, 1] }],
      attrs: { lower: true, unit_diagonal: true, left: true },
      note: 'batched a, unit diagonal, b broadcast',
    },
    {
      inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [2, 3, 2] }],
      attrs: { lower: false, unit_diagonal: false, left: true },
      note: 'upper, left, a broadcast against batched b',
    },
  ],
};

// ---- solve_t (internal) and solve ----

interface SolveTAttrs {
  trans: boolean;
}

/** Shape of x in op(a)·x = b with b a (batch of) matrices. */
function solveMatrixInfer(a: ValueMeta, b: ValueMeta, ctx: InferContext): ValueMeta {
  const dtype = fpPair(a, b, ctx);
  const n = squareOrFail(a, ctx);
  const r = b.shape.length;
  if (r < 2) failNode('SHAPE_MISMATCH', ctx, `b ${fmt(b.shape)} must be a (batch of) matrices (rank >= 2)`, inputAt(1));
  if (dimsDiffer(b.shape[r - 2]!, n)) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a.shape)} does not fit b ${fmt(b.shape)}: b needs (..., n, k) with n = ${n}`, inputAt(1));
  return { shape: [...batchOrFail(a, b, ctx), n, b.shape[r - 1]!], dtype };
}

const solveFlops = ([a]: ValueMeta[], out: ValueMeta): number => {
  const n = a!.shape[a!.shape.length - 1] ?? 0;
  return product(out.shape.slice(0, -2)) * ((2 / 3) * n * n * n + 2 * n * product(out.shape.slice(-2)));
};

/** The rules of x = op(a)⁻¹ b with b a matrix (solve_t; solve and lstsq route their matrix form through them). */
function solveMatrixVjp(e: Emitter, a: Ref, b: Ref, x: Ref, g: Ref, trans: boolean): [Ref, Ref] {
  // gb = op(a)⁻ᵀ g; ga = -gb xᵀ (a x = b) or -x gbᵀ (aᵀ x = b). gb is (…, n, k) and ga (…, n, n): the sign goes on
  // gb when that is smaller (k < n: a vector b negates n elements instead of n²); negation is exact, so ga's values
  // are the same either way.
  const gb = e.op('solve_t', [a, g], { trans: !trans });
  const [n, k] = gb.shape.slice(-2);
  const signOnGb = typeof n === 'number' && typeof k === 'number' && k < n;
  const u = signOnGb ? neg(e, gb) : gb;
  const p = trans ? mm(e, x, u, false, true) : mm(e, u, x, false, true);
  return [unbroadcast(e, signOnGb ? p : neg(e, p), a), unbroadcast(e, gb, b)];
}

function solveMatrixJvp(e: Emitter, a: Ref, x: Ref, ta: Ref | null, tb: Ref | null, trans: boolean): Ref {
  // dx = op(a)⁻¹ (db - op(da) x)
  const dax = ta ? neg(e, mm(e, ta, x, trans, false)) : null;
  return e.op('solve_t', [a, sumTerms(e, [tb, dax], x)!], { trans });
}

const solveT: OpDef<SolveTAttrs> = {
  name: 'solve_t',
  inputs: ['a', 'b'],
  internal: true,
  attrs: z.strictObject({ trans: z.boolean().default(false).describe('solve aᵀ·x = b') }),
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'x with a·x = b (aᵀ·x = b with trans) for b a (batch of) matrices (..., n, k), batch dims broadcast: the matrix form of solve that derivative rules use.',
  conventions: ['a matrix with an exactly zero LU pivot is SINGULAR_MATRIX (found while running)'],
  infer: ([a, b], _attrs, ctx) => solveMatrixInfer(a!, b!, ctx),
  async run([a, b], attrs, k) {
    const r = await k.solve(a!.data as Float64Array, [...a!.shape], b!.data as Float64Array, [...b!.shape], attrs.trans);
    return { dtype: a!.dtype, shape: r.shape, data: r.data };
  },
  flops: solveFlops,
  vjp: ({ e, inputs: [a, b], output, g, attrs }) => solveMatrixVjp(e, a!, b!, output, g, attrs.trans),
  jvp: ({ e, inputs: [a], output, tangents: [ta, tb], attrs }) => solveMatrixJvp(e, a!, output, ta ?? null, tb ?? null, attrs.trans),
  vmap: batchMatrices,
  samples: [
    { inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [3, 2] }], attrs: { trans: true }, note: 'aᵀ·x = b' },
    { inputs: [{ shape: [2, 3, 3], values: WELL_2x3 }, { shape: [3, 1] }], attrs: { trans: false }, note: 'batched a, b broadcast' },
  ],
};

/** b as a matrix: a vector b (OPS.md's rule) gets a trailing axis of size 1. */
function asMatrix(e: Emitter, v: Ref, vector: boolean): Ref {
  return vector ? e.op('unsqueeze', [v], { axes: [-1] }) : v;
}
function fromMatrix(e: Emitter, v: Ref, vector: boolean): Ref {
  return vector ? e.op('squeeze', [v], { axes: [-1] }) : v;
}

const solve: OpDef<Record<string, never>> = {
  name: 'solve',
  inputs: ['a', 'b'],
  attrs: z.strictObject({}) as unknown as z.ZodType<Record<string, never>>,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'x with a·x = b for a (..., n, n) and b (..., n, k), or b a (batch of) vector(s) when b.ndim == 1 or b.shape == a.shape[:-1]; batch dims broadcast (torch.linalg.solve). LU with partial pivoting.',
  conventions: [
    'b is a (batch of) vector(s) when b.ndim == 1 or b.shape == a.shape[:-1], else (..., n, k)',
    'a matrix with an exactly zero LU pivot is SINGULAR_MATRIX (found while running), naming the batch index',
  ],
  infer([a, b], _attrs, ctx) {
    const vector = isVectorRhs(a!.shape, b!.shape);
    const m = solveMatrixInfer(a!, vector ? { ...b!, shape: [...b!.shape, 1] } : b!, ctx);
    return vector ? { shape: m.shape.slice(0, -1), dtype: m.dtype } : m;
  },
  async run([a, b], _attrs, k) {
    const vector = isVectorRhs(a!.shape, b!.shape);
    const bShape = vector ? [...b!.shape, 1] : [...b!.shape];
    const r = await k.solve(a!.data as Float64Array, [...a!.shape], b!.data as Float64Array, bShape, false);
    return { dtype: a!.dtype, shape: vector ? r.shape.slice(0, -1) : r.shape, data: r.data };
  },
  flops: ([a, b], out) => solveFlops([a!, b!], { ...out, shape: isVectorRhs(a!.shape, b!.shape) ? [...out.shape, 1] : out.shape }),
  vjp({ e, inputs: [a, b], output, g }) {
    const v = isVectorRhs(a!.shape, b!.shape);
    const [ga, gb] = solveMatrixVjp(e, a!, asMatrix(e, b!, v), asMatrix(e, output, v), asMatrix(e, g, v), false);
    return [ga, v ? unbroadcast(e, fromMatrix(e, gb, v), b!) : gb];
  },
  jvp({ e, inputs: [a, b], output, tangents: [ta, tb] }) {
    const v = isVectorRhs(a!.shape, b!.shape);
    const dx = solveMatrixJvp(e, a!, asMatrix(e, output, v), ta ?? null, tb ? asMatrix(e, tb, v) : null, false);
    return fromMatrix(e, dx, v);
  },
  vmap: ({ b, inputs: [a, rhs], output }) => batchVectorRhs(b, a!, rhs!, output.shape, 'solve_t', { trans: false }),
  samples: [
    { inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [3, 2] }], note: 'matrix b' },
    { inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [3] }], note: 'vector b' },
    { inputs: [{ shape: [2, 3, 3], values: WELL_2x3 }, { shape: [2, 3] }], note: 'batch of vectors (b.shape == a.shape[:-1])' },
    { inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [2, 3, 1] }], note: 'a broadcast against a batch of b' },
  ],
};

// ---- lstsq ----

/**
 * x = a⁺ b for a of full column rank (m >= n): gb = a z and ga = -gb xᵀ + (b - a x) zᵀ with z = (aᵀa)⁻¹ g;
 * dx = (aᵀa)⁻¹ (aᵀ (db - da x) + daᵀ (b - a x)).
 */
function lstsqMatrixVjp(e: Emitter, a: Ref, b: Ref, x: Ref, g: Ref): [Ref, Ref] {
  const gram = mm(e, a, a, true, false);
  const z = e.op('solve_t', [gram, g], { trans: false });
  const gb = mm(e, a, z);
  const resid = e.op('sub', [b, mm(e, a, x)]);
  const ga = e.op('sub', [mm(e, resid, z, false, true), mm(e, gb, x, false, true)]);
  return [unbroadcast(e, ga, a), unbroadcast(e, gb, b)];
}

function lstsqMatrixJvp(e: Emitter, a: Ref, b: Ref, x: Ref, ta: Ref | null, tb: Ref | null): Ref {
  const gram = mm(e, a, a, true, false);
  const resid = e.op('sub', [b, mm(e, a, x)]);
  const inner = sumTerms(e, [tb, ta ? neg(e, mm(e, ta, x)) : null], resid)!;
  const terms = [mm(e, a, inner, true, false)];
  if (ta) terms.push(mm(e, ta, resid, true, false));
  return e.op('solve_t', [gram, sumTerms(e, terms, x)!], { trans: false });
}

const lstsq: OpDef<Record<string, never>> = {
  name: 'lstsq',
  inputs: ['a', 'b'],
  attrs: z.strictObject({}) as unknown as z.ZodType<Record<string, never>>,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'The minimum-norm least-squares solution x of a·x ≈ b for a (..., m, n) and b (..., m, k), or b a (batch of) vector(s) as in solve; batch dims broadcast (LAPACK gelsd, rcond = eps · max(m, n); torch.linalg.lstsq with driver gelsd).',
  conventions: [
    'the value is defined for every a (rank-deficient and m < n too); the derivatives assume full column rank (m >= n)',
    'b is a (batch of) vector(s) when b.ndim == 1 or b.shape == a.shape[:-1], else (..., m, k)',
  ],
  infer([a, b], _attrs, ctx) {
    const dtype = fpPair(a!, b!, ctx);
    if (a!.shape.length < 2) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a!.shape)} must be a (batch of) matrices (rank >= 2)`, inputAt(0));
    const vector = isVectorRhs(a!.shape, b!.shape);
    const bm = vector ? [...b!.shape, 1] : b!.shape;
    if (bm.length < 2) failNode('SHAPE_MISMATCH', ctx, `b ${fmt(b!.shape)} must be a (batch of) vectors or matrices`, inputAt(1));
    const ra = a!.shape.length;
    if (dimsDiffer(bm[bm.length - 2]!, a!.shape[ra - 2]!)) failNode('SHAPE_MISMATCH', ctx, `a ${fmt(a!.shape)} does not fit b ${fmt(b!.shape)}: b needs m = ${a!.shape[ra - 2]} rows`, inputAt(1));
    const batch = batchOrFail(a!, { ...b!, shape: bm }, ctx);
    return { shape: vector ? [...batch, a!.shape[ra - 1]!] : [...batch, a!.shape[ra - 1]!, bm[bm.length - 1]!], dtype };
  },
  async run([a, b], _attrs, k) {
    const vector = isVectorRhs(a!.shape, b!.shape);
    const r = await k.lstsq(a!.data as Float64Array, [...a!.shape], b!.data as Float64Array, vector ? [...b!.shape, 1] : [...b!.shape]);
    return { dtype: a!.dtype, shape: vector ? r.shape.slice(0, -1) : r.shape, data: r.data };
  },
  flops([a], out) {
    const r = a!.shape.length;
    const m = a!.shape[r - 2] ?? 0, n = a!.shape[r - 1] ?? 0;
    return product(out.shape) * Math.max(m, n) + product(a!.shape) * Math.max(m, n) * 4;
  },
  vjp({ e, inputs: [a, b], output, g }) {
    const v = isVectorRhs(a!.shape, b!.shape);
    const [ga, gb] = lstsqMatrixVjp(e, a!, asMatrix(e, b!, v), asMatrix(e, output, v), asMatrix(e, g, v));
    return [ga, v ? unbroadcast(e, fromMatrix(e, gb, v), b!) : gb];
  },
  jvp({ e, inputs: [a, b], output, tangents: [ta, tb] }) {
    const v = isVectorRhs(a!.shape, b!.shape);
    return fromMatrix(e, lstsqMatrixJvp(e, a!, asMatrix(e, b!, v), asMatrix(e, output, v), ta ?? null, tb ? asMatrix(e, tb, v) : null), v);
  },
  vmap: ({ b, inputs: [a, rhs], output }) => batchVectorRhs(b, a!, rhs!, output.shape, 'lstsq', {}),
  samples: [
    { inputs: [{ shape: [4, 3], values: TALL_4x3 }, { shape: [4, 2] }], note: 'overdetermined, matrix b' },
    { inputs: [{ shape: [4, 3], values: TALL_4x3 }, { shape: [4] }], note: 'vector b' },
    { inputs: [{ shape: [3, 3], values: WELL_3 }, { shape: [2, 3, 1] }], note: 'square a broadcast against a batch of b' },
  ],
};

export const ops: OpDef[] = [triangularSolve, solveT, solve, lstsq];
