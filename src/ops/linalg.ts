/**
 * Linear algebra: `matmul` (exactly np.matmul: 1-D operands promoted and squeezed back, batch dims broadcast),
 * `transpose`, and the internal `matmul_t` (operands >= 2-D with their last two dims optionally transposed) that the
 * derivative rules use so a backward pass never materializes a transpose: dA = g·Bᵀ and dB = Aᵀ·g go straight to gemm.
 */
import { z } from 'zod';
import { broadcastShapes, type Dim, type SymShape } from '../tensor/shape.js';
import type { Emitter, InferContext, OpDef, Ref, ValueMeta } from './types.js';
import { attrAt, failNode, fmt, inputAt, NUMERIC, ANY, sameDtype, sumTo, normAxis, orZeros } from './structural_util.js';

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

interface MatmulTAttrs {
  trans_a: boolean;
  trans_b: boolean;
}

/** Cotangents of c = op(A)·op(B) as matmul_t nodes (before undoing batch broadcasting). */
function matmulTCotangents(e: Emitter, a: Ref, b: Ref, g: Ref, ta: boolean, tb: boolean): [Ref, Ref] {
  const mt = (x: Ref, y: Ref, trans_a: boolean, trans_b: boolean) => e.op('matmul_t', [x, y], { trans_a, trans_b });
  const da = ta ? mt(b, g, tb, true) : mt(g, b, false, !tb);
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
    return [sumTo(e, da, a!), sumTo(e, db, b!)];
  },
  jvp({ e, inputs: [a, b], tangents: [ta, tb], attrs }) {
    const terms: Ref[] = [];
    if (ta) terms.push(e.op('matmul_t', [ta, b!], attrs as unknown as Record<string, unknown>));
    if (tb) terms.push(e.op('matmul_t', [a!, tb], attrs as unknown as Record<string, unknown>));
    return terms.length === 2 ? e.op('add', terms) : terms[0]!;
  },
  samples: [
    { inputs: [{ shape: [3, 2] }, { shape: [3, 4] }], attrs: { trans_a: true, trans_b: false }, note: 'Aᵀ·B' },
    { inputs: [{ shape: [2, 3] }, { shape: [4, 3] }], attrs: { trans_a: false, trans_b: true }, note: 'A·Bᵀ' },
    { inputs: [{ shape: [2, 3, 2] }, { shape: [4, 3] }], attrs: { trans_a: true, trans_b: true }, note: 'batched Aᵀ·Bᵀ' },
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
      return [sumTo(e, da, a!), sumTo(e, db, b!)];
    }
    if (b1) {
      // b [k] as [k, 1]; g [..., m] as [..., m, 1]
      const b2 = e.op('unsqueeze', [b!], { axes: [-1] });
      const g2 = e.op('unsqueeze', [g], { axes: [-1] });
      const [da, db] = matmulTCotangents(e, a!, b2, g2, false, false);
      return [sumTo(e, da, a!), sumTo(e, e.op('squeeze', [db], { axes: [-1] }), b!)];
    }
    const [da, db] = matmulTCotangents(e, a!, b!, g, false, false);
    return [sumTo(e, da, a!), sumTo(e, db, b!)];
  },
  jvp({ e, inputs: [a, b], tangents: [ta, tb] }) {
    const terms: Ref[] = [];
    if (ta) terms.push(e.op('matmul', [ta, b!]));
    if (tb) terms.push(e.op('matmul', [a!, tb]));
    return terms.length === 2 ? e.op('add', terms) : terms[0]!;
  },
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [3, 4] }], note: '2-D x 2-D' },
    { inputs: [{ shape: [3] }, { shape: [3, 4] }], note: '1-D x 2-D' },
    { inputs: [{ shape: [2, 3] }, { shape: [3] }], note: '2-D x 1-D' },
    { inputs: [{ shape: [3] }, { shape: [3] }], note: '1-D x 1-D (dot)' },
    { inputs: [{ shape: [2, 1, 2, 3] }, { shape: [3, 3, 2] }], note: 'batch broadcast [2, 1] x [3]' },
    { inputs: [{ shape: [3] }, { shape: [2, 3, 2] }], note: '1-D x batched' },
    { inputs: [{ shape: [2, 2, 3] }, { shape: [3] }], note: 'batched x 1-D' },
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
  samples: [
    { inputs: [{ shape: [2, 3] }], attrs: { perm: null }, note: 'default reverse' },
    { inputs: [{ shape: [2, 3, 4] }], attrs: { perm: [1, -1, 0] }, note: 'negative perm entry' },
  ],
};

export const ops: OpDef[] = [matmul, transpose, matmulT];
