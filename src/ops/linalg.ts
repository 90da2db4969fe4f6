/**
 * Linear algebra: `matmul` (exactly np.matmul: 1-D operands promoted and squeezed back, batch dims broadcast),
 * `transpose`, and the internal `matmul_t` (operands >= 2-D with their last two dims optionally transposed) that the
 * derivative rules use so a backward pass never materializes a transpose: dA = g·Bᵀ and dB = Aᵀ·g go straight to gemm.
 */
import { z } from 'zod';
import { broadcastShapes, type Dim, type SymShape } from '../tensor/shape.js';
import type { Batcher, BatchedValue, Emitter, InferContext, OpDef, Ref, ValueMeta } from './types.js';
import { ANY, attrAt, failNode, fmt, inputAt, normAxis, NUMERIC, orZeros, sameDtype, unbroadcast } from './common.js';

/** Shape of op(a)·op(b) for operands of rank >= 2, op = transpose of the last two dims when asked. */
function matmul2Shape(a: SymShape, b: SymShape, ta: boolean, tb: boolean, ctx: InferContext): SymShape {
  const ra = a.length, rb = b.length;
  const [m, ka] = ta ? [a[ra - 1]!, a[ra - 2]!] : [a[ra - 2]!, a[ra - 1]!];
  const [kb, n] = tb ? [b[rb - 1]!, b[rb - 2]!] : [b[rb - 2]!, b[rb - 1]!];
  if (ka !== null && kb !== null && ka !== kb) {
    failNode('SHAPE_MISMATCH', ctx, `contraction dims differ: ${fmt(a)} x ${fmt(b)} (${ka} vs ${kb})`, inputAt(1));
  }
  const batch = broadcastShapes(a.slice(0, ra - 2), b.slice(0, rb - 2));
  if (batch === undefined) failNode('SHAPE_MISMATCH', ctx, `batch dims of ${fmt(a)} and ${fmt(b)} do not broadcast`, inputAt(1));
  return [...batch, m, n];
}

function matmulInfer([a, b]: ValueMeta[], ctx: InferContext): ValueMeta {
  const dtype = sameDtype([a!, b!], ['a', 'b'], NUMERIC, ctx);
  if (a!.shape.length === 0 || b!.shape.length === 0) {
    failNode('SHAPE_MISMATCH', ctx, `operands must have rank >= 1, got ${fmt(a!.shape)} x ${fmt(b!.shape)}`, inputAt(a!.shape.length === 0 ? 0 : 1));
  }
  const aShape: SymShape = a!.shape.length === 1 ? [1, a!.shape[0]!] : a!.shape;
  const bShape: SymShape = b!.shape.length === 1 ? [b!.shape[0]!, 1] : b!.shape;
  const out = matmul2Shape(aShape, bShape, false, false, ctx);
  if (b!.shape.length === 1) out.splice(out.length - 1, 1);
  if (a!.shape.length === 1) out.splice(out.length - (b!.shape.length === 1 ? 1 : 2), 1);
  return { shape: out, dtype };
}

function flops2(out: SymShape, k: Dim): number {
  let n = 2 * (k ?? 0);
  for (const d of out) n *= d ?? 0;
  return n;
}

/**
 * Per-vector product size up to which an unbatched-times-batched product is batched as one wide GEMM plus
 * transposes. Above it the K products are big enough that the kernel's batched GEMM loop wins (measured: K = 256 outer
 * products of 256 x 256 take 32 ms batched vs 115 ms as one wide GEMM and a transpose).
 */
const SMALL_PRODUCT = 16384;

const numelOf = (s: readonly number[]): number => s.reduce((p, d) => p * d, 1);

/**
 * op(a)·op(c) whose contraction has size 1 is an outer product: written as a broadcasting mul of op(a) as [..., m, 1]
 * and op(c) as [..., 1, n] instead of K GEMMs of depth 1 (the same numbers, about twice as fast). Per-example
 * gradients are made of these: one example's input times its backpropagated error. False when it does not apply.
 */
function outerProduct(b: Batcher, a: BatchedValue, c: BatchedValue, ta: boolean, tb: boolean, reshapeTo?: readonly number[]): boolean {
  const ra = a.shape.length;
  const rc = c.shape.length;
  if (ra < 2 || rc < 2 || (ta ? a.shape[ra - 2] : a.shape[ra - 1]) !== 1) return false;
  const rank = Math.max(ra, rc);
  const m = ta ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const n = tb ? c.shape[rc - 2]! : c.shape[rc - 1]!;
  // a transpose of a [.., 1, m] or [.., n, 1] matrix only renames its dims: a reshape
  const shaped = (v: BatchedValue, last2: [number, number], trans: boolean): string => {
    const s = [...v.shape.slice(0, -2), ...last2];
    if (v.batched) return b.reshape(v, [b.K, ...new Array<number>(rank - s.length).fill(1), ...s]);
    return trans ? b.tmp('reshape', [v.name], { shape: s }) : v.name;
  };
  const operands = [shaped(a, [m, 1], ta), shaped(c, [1, n], tb)];
  if (reshapeTo === undefined) b.out('mul', operands);
  else b.out('reshape', [b.tmp('mul', operands)], { shape: [b.K, ...reshapeTo] });
  return true;
}

/** Batching rule of matmul_t: op(a)·op(c) with either operand batched; `out` is the unbatched output shape. */
function batchMatmulT(b: Batcher, a: BatchedValue, c: BatchedValue, out: readonly number[], ta: boolean, tb: boolean): void {
  const K = b.K;
  if (outerProduct(b, a, c, ta, tb)) return;
  const mt = (l: string, r: string, x: boolean, y: boolean): string => b.tmp('matmul_t', [l, r], { trans_a: x, trans_b: y });
  if (a.batched && !c.batched && !ta && c.shape.length === 2) {
    // [K, ..., m, k] . op(c): fold the batch into the rows of one GEMM.
    const rows = b.reshape(a, [K * numelOf(a.shape.slice(0, -1)), a.shape[a.shape.length - 1]!]);
    b.out('reshape', [mt(rows, c.name, false, tb)], { shape: [K, ...out] });
    return;
  }
  if (!a.batched && c.batched && a.shape.length === 2 && c.shape.length === 2 && numelOf(out) <= SMALL_PRODUCT) {
    const m = out[0]!;
    const n = out[1]!;
    if (tb) {
      // op(a) . c_i^T = (c_i . op(a)^T)^T: stack the c_i as rows of one GEMM.
      const rows = b.reshape(c, [K * c.shape[0]!, c.shape[1]!]);
      const r3 = b.tmp('reshape', [mt(rows, a.name, false, !ta)], { shape: [K, n, m] });
      b.out('transpose', [r3], { perm: [0, 2, 1] });
    } else {
      // op(a) . [c_1 ... c_K] laid side by side as [k, K*n].
      const k = c.shape[0]!;
      const t1 = b.tmp('transpose', [c.name], { perm: [1, 0, 2] });
      const wide = b.tmp('reshape', [t1], { shape: [k, K * n] });
      const r3 = b.tmp('reshape', [mt(a.name, wide, ta, false)], { shape: [m, K, n] });
      b.out('transpose', [r3], { perm: [1, 0, 2] });
    }
    return;
  }
  const rank = Math.max(a.shape.length, c.shape.length);
  const l = a.batched ? b.lift(a, rank) : a.name;
  const r = c.batched ? b.lift(c, rank) : c.name;
  b.out('reshape', [mt(l, r, ta, tb)], { shape: [K, ...out] });
}

/** Batching rule of matmul (np.matmul semantics) with either operand batched. */
function batchMatmul(b: Batcher, a: BatchedValue, c: BatchedValue, out: readonly number[]): void {
  const K = b.K;
  // Promote 1-D operands as np.matmul does; the final reshape to [K, ...out] drops the promoted axes again.
  let A: BatchedValue = a;
  let C: BatchedValue = c;
  if (a.shape.length === 1) {
    const shape = [1, a.shape[0]!];
    A = { ...a, name: b.reshape(a, a.batched ? [K, ...shape] : shape), shape };
  }
  if (c.shape.length === 1) {
    const shape = [c.shape[0]!, 1];
    C = { ...c, name: b.reshape(c, c.batched ? [K, ...shape] : shape), shape };
  }
  const as = A.shape;
  const cs = C.shape;
  // the promoted axes of 1-D operands are dropped again
  if (outerProduct(b, A, C, false, false, a.shape.length === 1 || c.shape.length === 1 ? out : undefined)) return;
  if (A.batched && !C.batched && cs.length === 2) {
    // [K, ..., m, k] @ [k, n]: fold the batch into the rows of one GEMM.
    const rows = b.reshape(A, [K * numelOf(as.slice(0, -1)), as[as.length - 1]!]);
    b.out('reshape', [b.tmp('matmul', [rows, C.name])], { shape: [K, ...out] });
    return;
  }
  if (!A.batched && C.batched && as.length === 2 && cs.length === 2 && numelOf(out) <= SMALL_PRODUCT) {
    // [m, k] @ [K, k, n]: one GEMM against the batch laid side by side as [k, K*n].
    const [k, n] = cs as [number, number];
    const t1 = b.tmp('transpose', [C.name], { perm: [1, 0, 2] });
    const wide = b.tmp('reshape', [t1], { shape: [k, K * n] });
    const prod = b.tmp('matmul', [A.name, wide]);
    const r3 = b.tmp('reshape', [prod], { shape: [as[0]!, K, n] });
    const t2 = b.tmp('transpose', [r3], { perm: [1, 0, 2] });
    b.out('reshape', [t2], { shape: [K, ...out] });
    return;
  }
  const rank = Math.max(as.length, cs.length);
  const l = A.batched ? b.lift(A, rank) : A.name;
  const r = C.batched ? b.lift(C, rank) : C.name;
  b.out('reshape', [b.tmp('matmul', [l, r])], { shape: [K, ...out] });
}

interface MatmulTAttrs {
  trans_a: boolean;
  trans_b: boolean;
}

/** Cotangents of c = op(A)·op(B) as matmul_t nodes (before undoing batch broadcasting). */
function matmulTCotangents(e: Emitter, a: Ref, b: Ref, g: Ref, ta: boolean, tb: boolean): [Ref, Ref] {
  const mt = (x: Ref, y: Ref, trans_a: boolean, trans_b: boolean) => e.op('matmul_t', [x, y], { trans_a, trans_b });
  const da = ta ? mt(b, g, tb, true) : mt(g, b, false, !tb);
  // A 2-D b against a batched, untransposed a (a linear layer on [..., m, k]): b's cotangent contracts over the batch
  // and the rows at once, one product of the folded [batch * m, k] and [batch * m, n], where the batched products
  // made a [batch, k, n] temporary for unbroadcast to sum (8 MiB for the transformer block's 1024 x 256 weight).
  const last = (v: Ref): number | null => v.shape[v.shape.length - 1]!;
  if (b.shape.length === 2 && a.shape.length > 2 && !ta && last(a) !== null && last(g) !== null) {
    const fold = (v: Ref): Ref => e.op('reshape', [v], { shape: [-1, last(v)!] });
    return [da, tb ? mt(fold(g), fold(a), true, false) : mt(fold(a), fold(g), true, false)];
  }
  const db = tb ? mt(g, a, true, ta) : mt(a, g, !ta, false);
  return [da, db];
}

const matmulT: OpDef<MatmulTAttrs> = {
  name: 'matmul_t',
  inputs: ['a', 'b'],
  internal: true,
  attrs: z.strictObject({ trans_a: z.boolean().default(false), trans_b: z.boolean().default(false) }),
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'op(a)·op(b) for operands of rank >= 2, op transposing the last two dims when trans_a / trans_b is set.',
  infer([a, b], attrs, ctx) {
    const dtype = sameDtype([a!, b!], ['a', 'b'], NUMERIC, ctx);
    if (a!.shape.length < 2 || b!.shape.length < 2) failNode('SHAPE_MISMATCH', ctx, `operands must have rank >= 2, got ${fmt(a!.shape)} x ${fmt(b!.shape)}`, inputAt(a!.shape.length < 2 ? 0 : 1));
    return { shape: matmul2Shape(a!.shape, b!.shape, attrs.trans_a, attrs.trans_b, ctx), dtype };
  },
  async run([a, b], attrs, k) {
    const r = await k.matmul(a!.data, [...a!.shape], b!.data, [...b!.shape], attrs.trans_a, attrs.trans_b);
    return { dtype: a!.dtype, shape: r.shape, data: r.data };
  },
  flops([a], out, attrs) {
    const r = a!.shape.length;
    return flops2(out.shape, attrs.trans_a ? a!.shape[r - 2]! : a!.shape[r - 1]!);
  },
  vjp({ e, inputs: [a, b], g, attrs }) {
    const [da, db] = matmulTCotangents(e, a!, b!, g, attrs.trans_a, attrs.trans_b);
    return [unbroadcast(e, da, a!), unbroadcast(e, db, b!)];
  },
  jvp({ e, inputs: [a, b], tangents: [ta, tb], attrs }) {
    const terms: Ref[] = [];
    if (ta) terms.push(e.op('matmul_t', [ta, b!], attrs as unknown as Record<string, unknown>));
    if (tb) terms.push(e.op('matmul_t', [a!, tb], attrs as unknown as Record<string, unknown>));
    return terms.length === 2 ? e.op('add', terms) : terms[0]!;
  },
  vmap({ b, inputs: [a, c], output, attrs }) {
    batchMatmulT(b, a!, c!, output.shape, attrs.trans_a === true, attrs.trans_b === true);
    return true;
  },
  samples: [
    { inputs: [{ shape: [3, 2] }, { shape: [3, 4] }], attrs: { trans_a: true, trans_b: false }, note: 'Aᵀ·B' },
    { inputs: [{ shape: [2, 3] }, { shape: [4, 3] }], attrs: { trans_a: false, trans_b: true }, note: 'A·Bᵀ' },
    { inputs: [{ shape: [2, 3, 2] }, { shape: [4, 3] }], attrs: { trans_a: true, trans_b: true }, note: 'batched Aᵀ·Bᵀ' },
    { inputs: [{ shape: [2, 1, 3] }, { shape: [4, 1] }], attrs: { trans_a: true, trans_b: true }, note: 'contraction of size 1 (outer products)' },
    { inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }], attrs: { trans_a: false, trans_b: true }, note: 'batched A·Bᵀ with a 2-D B (folded cotangent of B)' },
  ],
};

const matmul: OpDef<Record<string, never>> = {
  name: 'matmul',
  inputs: ['a', 'b'],
  attrs: z.strictObject({}) as unknown as z.ZodType<Record<string, never>>,
  outputDatatype: 'same as a',
  differentiable: true,
  doc: 'Matrix product exactly as np.matmul: 1-D operands are promoted and squeezed back, batch dims broadcast.',
  conventions: ['1-D a is treated as [1, k], 1-D b as [k, 1]; the added dim is removed from the result'],
  infer: (inputs, _attrs, ctx) => matmulInfer(inputs, ctx),
  async run([a, b], _attrs, k) {
    const a1 = a!.shape.length === 1, b1 = b!.shape.length === 1;
    const aShape = a1 ? [1, a!.shape[0]!] : [...a!.shape];
    const bShape = b1 ? [b!.shape[0]!, 1] : [...b!.shape];
    const r = await k.matmul(a!.data, aShape, b!.data, bShape, false, false);
    const shape = [...r.shape];
    if (b1) shape.splice(shape.length - 1, 1);
    if (a1) shape.splice(shape.length - (b1 ? 1 : 2), 1);
    return { dtype: a!.dtype, shape, data: r.data };
  },
  flops([a], out) {
    return flops2(out.shape, a!.shape[a!.shape.length - 1]!);
  },
  vjp({ e, inputs: [a, b], g }) {
    const a1 = a!.shape.length === 1, b1 = b!.shape.length === 1;
    if (a1 && b1) return [e.op('mul', [g, b!]), e.op('mul', [g, a!])];
    if (a1) {
      // a [k] as [1, k]; g [..., n] as [..., 1, n]
      const a2 = e.op('unsqueeze', [a!], { axes: [0] });
      const g2 = e.op('unsqueeze', [g], { axes: [-2] });
      const [da, db] = matmulTCotangents(e, a2, b!, g2, false, false);
      return [unbroadcast(e, da, a!), unbroadcast(e, db, b!)];
    }
    if (b1) {
      // b [k] as [k, 1]; g [..., m] as [..., m, 1]
      const b2 = e.op('unsqueeze', [b!], { axes: [-1] });
      const g2 = e.op('unsqueeze', [g], { axes: [-1] });
      const [da, db] = matmulTCotangents(e, a!, b2, g2, false, false);
      return [unbroadcast(e, da, a!), unbroadcast(e, e.op('squeeze', [db], { axes: [-1] }), b!)];
    }
    const [da, db] = matmulTCotangents(e, a!, b!, g, false, false);
    return [unbroadcast(e, da, a!), unbroadcast(e, db, b!)];
  },
  jvp({ e, inputs: [a, b], tangents: [ta, tb] }) {
    const terms: Ref[] = [];
    if (ta) terms.push(e.op('matmul', [ta, b!]));
    if (tb) terms.push(e.op('matmul', [a!, tb]));
    return terms.length === 2 ? e.op('add', terms) : terms[0]!;
  },
  vmap({ b, inputs: [a, c], output }) {
    batchMatmul(b, a!, c!, output.shape);
    return true;
  },
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [3, 4] }], note: '2-D x 2-D' },
    { inputs: [{ shape: [3] }, { shape: [3, 4] }], note: '1-D x 2-D' },
    { inputs: [{ shape: [2, 3] }, { shape: [3] }], note: '2-D x 1-D' },
    { inputs: [{ shape: [3] }, { shape: [3] }], note: '1-D x 1-D (dot)' },
    { inputs: [{ shape: [2, 1, 2, 3] }, { shape: [3, 3, 2] }], note: 'batch broadcast [2, 1] x [3]' },
    { inputs: [{ shape: [2, 3, 4] }, { shape: [4, 2] }], note: '3-D x 2-D (a linear layer: folded weight cotangent)' },
    { inputs: [{ shape: [2, 2, 3] }, { shape: [3] }], note: '3-D x 1-D' },
    { inputs: [{ shape: [3] }, { shape: [2, 3, 2] }], note: '1-D x batched' },
    { inputs: [{ shape: [2, 2, 3] }, { shape: [3] }], note: 'batched x 1-D' },
    { inputs: [{ shape: [3, 1] }, { shape: [2, 1, 4] }], note: 'contraction of size 1 (outer products), batch broadcast' },
  ],
};

interface TransposeAttrs {
  perm: number[] | null;
}

function permOf(attrs: TransposeAttrs, rank: number): number[] {
  if (attrs.perm === null) return Array.from({ length: rank }, (_, i) => rank - 1 - i);
  return attrs.perm.map((p) => normAxis(p, rank));
}

function inversePerm(perm: number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => { inv[p] = i; });
  return inv;
}

const transpose: OpDef<TransposeAttrs> = {
  name: 'transpose',
  inputs: ['x'],
  attrs: z.strictObject({
    perm: z.union([z.array(z.number().int()), z.null()]).default(null).describe('permutation of the axes; null = reverse'),
  }),
  outputDatatype: 'same as x',
  differentiable: true,
  doc: 'Permute the axes (np.transpose); perm defaults to reversing them.',
  infer([x], attrs, ctx) {
    const rank = x!.shape.length;
    if (attrs.perm !== null) {
      if (attrs.perm.length !== rank) failNode('INVALID_ATTRS', ctx, `perm [${attrs.perm.join(', ')}] has ${attrs.perm.length} entries for rank ${rank}`, attrAt('perm'));
      const seen = new Set<number>();
      for (const p of attrs.perm) {
        const n = normAxis(p, rank);
        if (n < 0 || n >= rank) failNode('INVALID_ATTRS', ctx, `perm axis ${p} is out of range for rank ${rank}`, attrAt('perm'));
        if (seen.has(n)) failNode('INVALID_ATTRS', ctx, `perm axis ${p} is repeated in [${attrs.perm.join(', ')}] (rank ${rank})`, attrAt('perm'));
        seen.add(n);
      }
    }
    if (!ANY.includes(x!.dtype)) failNode('DATATYPE_MISMATCH', ctx, `x is ${x!.dtype}`);
    return { shape: permOf(attrs, rank).map((p) => x!.shape[p]!), dtype: x!.dtype };
  },
  async run([x], attrs, k) {
    const perm = permOf(attrs, x!.shape.length);
    const data = await k.transpose(x!.data, [...x!.shape], perm);
    return { dtype: x!.dtype, shape: perm.map((p) => x!.shape[p]!), data };
  },
  vjp({ e, inputs: [x], g, attrs }) {
    return [e.op('transpose', [g], { perm: inversePerm(permOf(attrs, x!.shape.length)) })];
  },
  jvp({ e, inputs: [x], tangents: [t], attrs }) {
    return e.op('transpose', [orZeros(e, t ?? null, x!)], { perm: permOf(attrs, x!.shape.length) });
  },
  vmap({ b, inputs: [x], attrs }) {
    const r = x!.shape.length;
    const perm = (attrs.perm as number[] | undefined | null) ?? Array.from({ length: r }, (_, i) => r - 1 - i);
    b.out('transpose', [x!.name], { ...attrs, perm: [0, ...perm.map((p) => b.axis(p, r, 0) + 1)] });
    return true;
  },
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { perm: null }, note: 'default reverse' },
    { inputs: [{ shape: [2, 3, 4] }], attrs: { perm: [1, -1, 0] }, note: 'negative perm entry' },
  ],
};

export const ops: OpDef[] = [matmul, transpose, matmulT];
