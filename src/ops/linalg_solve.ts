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
  const names = [a, m].map((v) => (v.batched ? b.lift(v, rank) : v.name));
  b.out('reshape', [b.tmp(matrixOp, names, attrs)], { shape: [b.K, ...out] });
  return true;
}

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
      inputs: [{ shape: [3, 3], values: [2.5, 0.7, -0.4, 0.3, 1.8, 0.9, -0.6, 0.5, 3.1] }, { shape: [3, 2] }],
      note: 'lower, left (the upper triangle is not read)',
    },
    {
      inputs: [{ shape: [3, 3], values: [2.5, 0.7, -0.4, 0.3, 1.8, 0.9, -0.6, 0.5, 3.1] }, { shape: [2, 3] }],
      attrs: { lower: false, unit_diagonal: false, left: false },
      note: 'upper, right',
    },
    {
      inputs: [{ shape: [2, 3, 3], values: [1.5, 0.2, 0.3, -0.8, 2.0, 0.1, 0.4, -0.3, 1.2, 2.2, 0.6, -0.5, 0.1, 1.4, 0.8, 0.7, -0.2, 1.9] }, { shape: [3, 1] }],
      attrs: { lower: true, unit_diagonal: true, left: true },
      note: 'batched a, unit diagonal, b broadcast',
    },
    {
      inputs: [{ shape: [3, 3], values: [2.5, 0.7, -0.4, 0.3, 1.8, 0.9, -0.6, 0.5, 3.1] }, { shape: [2, 3, 2] }],
      attrs: { lower: false, unit_diagonal: false, left: true },
      note: 'upper, left, a broadcast against batched b',
    },
  ],
};

export const ops: OpDef[] = [triangularSolve];
