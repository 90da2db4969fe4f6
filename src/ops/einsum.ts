/**
 * `einsum` (n operands, explicit output, repeated letters for diagonals and traces, `...` broadcasting) and the
 * internal `einsum_embed` (its adjoint for repeated letters: values written onto a diagonal of zeros).
 *
 * The forward pass runs the plan of src/ops/einsum_plan.ts on the transpose, slice, reduce, matmul and mul kernels.
 * The VJP with respect to operand i is an einsum of the cotangent with the other operands whose output is operand i's
 * letters (each once); `...` axes become spare letters so broadcast axes can be summed back (`sum_to_like`), letters
 * only operand i has come back through a ones operand, and repeated letters go back onto their diagonal with
 * `einsum_embed`, whose own VJP is the diagonal einsum again. So every derivative is einsums, and differentiates again.
 */
import { z } from 'zod';
import { fail } from '../errors.js';
import { isConcrete, sameShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Emitter, InferContext, OpDef, OpKernels, Ref, ValueMeta, VmapArgs } from './types.js';
import { attrAt, failNode, fmt, inputAt, NUMERIC, sameDtype, unbroadcast } from './common.js';
import {
  DOTS, ELLIPSIS, ellipsisRanks, EquationError, expandLabels, labelSizes, letterOf, parseEquation, planEinsum,
  SizeError, termText, type Equation,
} from './einsum_plan.js';

interface EinsumAttrs {
  equation: string;
}

const einsumAttrs = z.strictObject({
  equation: z.string().describe('subscripts per operand, comma-separated, then "->" and the output subscripts (required), e.g. "bij,bjk->bik"; letters a-z A-Z, "..." for broadcast axes'),
});

function parsedOrFail(attrs: EinsumAttrs, ctx: InferContext, repeatedOutput = false): Equation {
  try {
    return parseEquation(attrs.equation, repeatedOutput);
  } catch (e) {
    if (e instanceof EquationError) failNode('INVALID_ATTRS', ctx, `equation "${attrs.equation}": ${e.message}`, attrAt('equation'));
    throw e;
  }
}

const shapeText = (inputs: readonly ValueMeta[]) => (i: number): string => fmt(inputs[i]!.shape);

/** Applies the size rule; SHAPE_MISMATCH at the operand at fault. */
function sizesOrFail(eq: Equation, inputs: readonly ValueMeta[], attrs: EinsumAttrs, ctx: InferContext) {
  try {
    const eRanks = ellipsisRanks(eq, inputs.map((v) => v.shape.length), shapeText(inputs));
    const labels = expandLabels(eq, eRanks);
    return { ...labels, size: labelSizes(labels.inputs, inputs.map((v) => v.shape), shapeText(inputs)) };
  } catch (e) {
    if (e instanceof SizeError) failNode('SHAPE_MISMATCH', ctx, `equation "${attrs.equation}": ${e.message}`, inputAt(e.operand));
    throw e;
  }
}

async function runPlan(xs: Tensor[], attrs: EinsumAttrs, k: OpKernels): Promise<Tensor> {
  const plan = planEinsum(parseEquation(attrs.equation), xs.map((x) => x.shape));
  const dtype = xs[0]!.dtype;
  const regs: Tensor[] = [...xs];
  for (const s of plan.steps) {
    switch (s.op) {
      case 'transpose': {
        const x = regs[s.src]!;
        regs[s.dst] = { dtype, shape: s.perm.map((p) => x.shape[p]!), data: await k.transpose(x.data, [...x.shape], s.perm) };
        break;
      }
      case 'reshape':
        regs[s.dst] = { dtype, shape: s.shape, data: regs[s.src]!.data };
        break;
      case 'slice': {
        const x = regs[s.src]!;
        regs[s.dst] = { dtype, shape: s.shape, data: await k.slice(x.data, [...x.shape], s.starts, s.steps, s.shape) };
        break;
      }
      case 'sum': {
        const x = regs[s.src]!;
        regs[s.dst] = { dtype, shape: x.shape.filter((_, i) => !s.axes.includes(i)), data: await k.reduce('sum', x.data, [...x.shape], s.axes) };
        break;
      }
      case 'matmul': {
        const a = regs[s.a]!, b = regs[s.b]!;
        const r = await k.matmul(a.data, [...a.shape], b.data, [...b.shape], s.transA, s.transB);
        regs[s.dst] = { dtype, shape: r.shape, data: r.data };
        break;
      }
      case 'mul': {
        const a = regs[s.a]!, b = regs[s.b]!;
        const r = await k.binary('mul', a.data, [...a.shape], b.data, [...b.shape]);
        regs[s.dst] = { dtype, shape: r.shape, data: r.data };
        break;
      }
    }
  }
  const out = regs[plan.result]!;
  // an equation that only relabels ("ij->ij") would hand back an operand's own buffer: copy it
  if (xs.some((x) => x.data === out.data)) {
    return { dtype, shape: plan.shape, data: await k.transpose(out.data, [...plan.shape], plan.shape.map((_, i) => i)) };
  }
  return { dtype, shape: plan.shape, data: out.data };
}

// ---- derivative rules ----

/** The expanded labels with every `...` axis renamed to a letter the equation does not use. */
function lettered(eq: Equation, inputs: readonly Ref[]): { ins: number[][]; out: number[] } {
  const eRanks = ellipsisRanks(eq, inputs.map((v) => v.shape.length), (i) => fmt(inputs[i]!.shape));
  const { inputs: ins, output, width } = expandLabels(eq, eRanks);
  const used = new Set([...eq.inputs, eq.output].flatMap((t) => t.labels).filter((l) => l !== DOTS));
  const spare = Array.from({ length: 52 }, (_, l) => l).filter((l) => !used.has(l));
  if (spare.length < width) {
    fail('INVALID_ATTRS', `einsum: the equation's letters and its ${width} '...' axes exceed the 52 letters a derivative equation can name`);
  }
  const rename = (l: number): number => (l >= ELLIPSIS ? spare[l - ELLIPSIS]! : l);
  return { ins: ins.map((ls) => ls.map(rename)), out: output.map(rename) };
}

/** einsum of `ops` (subscripts `terms`) to `out`, or the operand itself / a transpose when that is all it is. */
function emitEinsum(e: Emitter, ops: Ref[], terms: number[][], out: number[]): Ref {
  if (ops.length === 1) {
    const t = terms[0]!;
    const perm = out.map((l) => t.indexOf(l));
    if (t.length === out.length && new Set(t).size === t.length && perm.every((p) => p >= 0)) {
      return perm.every((p, i) => p === i) ? ops[0]! : e.op('transpose', [ops[0]!], { perm });
    }
  }
  return e.op('einsum', ops, { equation: `${terms.map(termText).join(',')}->${termText(out)}` });
}

function operandCotangent(e: Emitter, inputs: readonly Ref[], g: Ref, ins: number[][], out: number[], i: number): Ref {
  const x = inputs[i]!;
  const own = ins[i]!;
  const ownLabels = own;
  const unique = [...new Set(own)];
  const ops: Ref[] = [g];
  const terms: number[][] = [out];
  inputs.forEach((v, j) => {
    if (j === i) return;
    ops.push(v);
    terms.push(ins[j]!);
  });
  // A letter of this operand whose full size no other term provably carries (only this operand has it, or the
  // others have it as a broadcast 1) was summed or broadcast in the forward pass: a ones operand brings it back.
  const sizeIn = (v: Ref, t: readonly number[], l: number) => v.shape[t.indexOf(l)];
  const covered = (l: number): boolean => {
    const own = sizeIn(x, ownLabels, l);
    if (out.includes(l)) return true;
    return inputs.some((v, j) => {
      if (j === i || !ins[j]!.includes(l)) return false;
      const d = sizeIn(v, ins[j]!, l);
      // a size other than 1 is the full size; 1 covers only an operand that has 1 itself
      return d !== null && d !== undefined && d !== 1 ? true : own === 1 || (own !== null && d === own);
    });
  };
  if (unique.some((l) => !covered(l))) {
    ops.push(e.op('ones_like', [x]));
    terms.push(own);
  }
  let gd = emitEinsum(e, ops, terms, unique);
  if (unique.length === own.length) return unbroadcast(e, gd, x);
  const diag = unique.map((u) => x.shape[own.indexOf(u)]!);
  if (!(isConcrete(diag) && isConcrete(gd.shape) && sameShape(gd.shape, diag))) {
    gd = e.op('sum_to_like', [gd, emitEinsum(e, [x], [own], unique)]);
  }
  return e.op('einsum_embed', [gd], { equation: `${termText(unique)}->${termText(own)}` });
}

/** A letter the equation does not use (for a batch axis), or undefined. */
function spareLetter(equation: string): string | undefined {
  for (let l = 0; l < 52; l++) if (!equation.includes(letterOf(l))) return letterOf(l);
  return undefined;
}

/** The equation with letter `z` in front of the batched operands' subscripts and the output's. */
function withBatchLetter(equation: string, batched: readonly boolean[], z: string): string {
  const [lhs, rhs] = equation.split('->') as [string, string];
  const terms = lhs.split(',').map((t, i) => (batched[i] ? z + t.trim() : t));
  return `${terms.join(',')}->${z}${rhs.trim()}`;
}

function vmapEinsum(op: string) {
  return ({ b, inputs, attrs }: VmapArgs): boolean => {
    const equation = String(attrs.equation);
    const z = spareLetter(equation);
    if (z === undefined) return b.refuse('no spare letter for the batch axis');
    b.out(op, inputs.map((v) => v.name), { ...attrs, equation: withBatchLetter(equation, inputs.map((v) => v.batched), z) });
    return true;
  };
}

const einsum: OpDef<EinsumAttrs> = {
  name: 'einsum',
  inputs: { variadic: 'operands', min: 1 },
  attrs: einsumAttrs,
  outputDatatype: 'same as operands',
  differentiable: true,
  doc: 'Einstein summation over n operands with an explicit output ("bij,bjk->bik"): repeated letters take diagonals, letters missing from the output are summed, "..." broadcasts.',
  conventions: [
    'the output subscripts are required ("->"); letters a-z and A-Z; spaces are ignored',
    'a letter repeated within one operand takes its diagonal (sizes must agree); a letter may not repeat in the output',
    "a letter's sizes agree across operands or are 1 (broadcast), as NumPy and PyTorch; '...' axes broadcast right-aligned",
    "an operand's '...' axes are summed when the output has no '...' (PyTorch)",
    'runs as transposes, strided slices (diagonals), sums and batched matmuls, contracting operands left to right',
    'the gradient of each operand is an einsum of the cotangent with the other operands',
  ],
  infer(inputs, attrs, ctx) {
    const eq = parsedOrFail(attrs, ctx);
    if (eq.inputs.length !== inputs.length) {
      failNode('INVALID_ATTRS', ctx, `equation "${attrs.equation}" has ${eq.inputs.length} operand${eq.inputs.length === 1 ? '' : 's'} but the node has ${inputs.length} input${inputs.length === 1 ? '' : 's'}`, attrAt('equation'));
    }
    const dtype = sameDtype(inputs, inputs.map((_, i) => `operands[${i}]`), NUMERIC, ctx);
    const { output, size } = sizesOrFail(eq, inputs, attrs, ctx);
    return { shape: output.map((l) => size.get(l)!), dtype };
  },
  run: (xs, attrs, k) => runPlan(xs, attrs, k),
  flops(inputs, _output, attrs) {
    const shapes = inputs.map((v) => v.shape);
    return shapes.every(isConcrete) ? planEinsum(parseEquation(attrs.equation), shapes).flops : 0;
  },
  vjp({ e, inputs, g, attrs }) {
    const { ins, out } = lettered(parseEquation(attrs.equation), inputs);
    return inputs.map((_, i) => operandCotangent(e, inputs, g, ins, out, i));
  },
  jvp({ e, inputs, tangents, attrs }) {
    let acc: Ref | null = null;
    tangents.forEach((t, i) => {
      if (t === null) return;
      const term = e.op('einsum', inputs.map((v, j) => (j === i ? t : v)), { equation: attrs.equation });
      acc = acc === null ? term : e.op('add', [acc, term]);
    });
    return acc;
  },
  vmap: vmapEinsum('einsum'),
  samples: [
    { inputs: [{ shape: [2, 3] }, { shape: [3, 4] }], attrs: { equation: 'ij,jk->ik' }, note: 'matmul' },
    { inputs: [{ shape: [2, 2, 3] }, { shape: [2, 3, 2] }], attrs: { equation: 'bij,bjk->bik' }, note: 'batch matmul' },
    { inputs: [{ shape: [3, 2] }, { shape: [2, 3, 4] }], attrs: { equation: 'ji,bjk->bki' }, note: 'transposed operands, batch from one side' },
    { inputs: [{ shape: [3] }, { shape: [4] }], attrs: { equation: 'i,j->ij' }, note: 'outer product' },
    { inputs: [{ shape: [3, 3] }], attrs: { equation: 'ii->' }, note: 'trace' },
    { inputs: [{ shape: [3, 3] }], attrs: { equation: 'ii->i' }, note: 'diagonal' },
    { inputs: [{ shape: [2, 3, 2] }], attrs: { equation: 'iji->ji' }, note: 'diagonal of non-adjacent axes' },
    { inputs: [{ shape: [2, 2, 2] }, { shape: [2] }], attrs: { equation: 'iii,i->i' }, note: 'triple diagonal times a vector' },
    { inputs: [{ shape: [2, 3] }], attrs: { equation: 'ij->ji' }, note: 'transpose' },
    { inputs: [{ shape: [2, 3] }], attrs: { equation: ' i j -> ' }, note: 'sum of everything, spaces' },
    { inputs: [{ shape: [2, 3] }, { shape: [2, 3] }], attrs: { equation: 'ij,ij->ij' }, note: 'elementwise product' },
    { inputs: [{ shape: [4, 3] }, { shape: [4, 3] }], attrs: { equation: 'bi,bi->b' }, note: 'batched dot' },
    { inputs: [{ shape: [2, 3] }, { shape: [3, 2] }, { shape: [2, 4] }], attrs: { equation: 'ij,jk,kl->il' }, note: 'chain of three' },
    { inputs: [{ shape: [2, 3] }, { shape: [4, 3, 2] }, { shape: [2, 2] }], attrs: { equation: 'bn,anm,bm->ba' }, note: 'bilinear form' },
    { inputs: [{ shape: [2, 1, 2, 3] }, { shape: [3, 3, 2] }], attrs: { equation: '...ij,...jk->...ik' }, note: "broadcast '...' [2, 1] x [3]" },
    { inputs: [{ shape: [2, 3, 4] }], attrs: { equation: '...i->i' }, note: "'...' summed (absent from the output)" },
    { inputs: [{ shape: [1, 3] }, { shape: [2, 3] }], attrs: { equation: 'ij,ij->ij' }, note: 'a size-1 letter broadcasts' },
    { inputs: [{ shape: [1, 3] }, { shape: [2, 3] }], attrs: { equation: 'ij,kj->k' }, note: 'a size-1 letter summed alone' },
    { inputs: [{ shape: [] }, { shape: [3] }], attrs: { equation: ',i->i' }, note: 'scalar operand' },
    { inputs: [{ shape: [2, 3] }], attrs: { equation: 'ij->ij' }, note: 'identity (a copy)' },
    { inputs: [{ shape: [3, 2] }, { shape: [3] }], attrs: { equation: 'iA,i->A' }, note: 'upper-case letter' },
  ],
};

interface EmbedSpec {
  from: number[];
  to: number[];
}

function embedSpec(attrs: EinsumAttrs, ctx: InferContext): EmbedSpec {
  const eq = parsedOrFail(attrs, ctx, true);
  const bad = (msg: string): never => failNode('INVALID_ATTRS', ctx, `equation "${attrs.equation}": ${msg}`, attrAt('equation'));
  if (eq.inputs.length !== 1) bad('einsum_embed takes one operand');
  const from = eq.inputs[0]!.labels;
  const to = eq.output.labels;
  if (from.includes(DOTS) || to.includes(DOTS)) bad("'...' is not supported");
  if (new Set(from).size !== from.length) bad('the operand letters must be distinct');
  if (from.some((l) => !to.includes(l))) bad('every operand letter must appear in the output');
  return { from, to };
}

/** The output's letters grouped (each letter's axes adjacent, letters in first-occurrence order). */
const grouped = (to: readonly number[]): number[] => [...new Set(to)].flatMap((u) => to.filter((l) => l === u));

/** The letters of an einsum_embed equation (validated by infer). */
function parseEmbed(equation: string): EmbedSpec {
  const eq = parseEquation(equation, true);
  return { from: eq.inputs[0]!.labels, to: eq.output.labels };
}

const einsum_embed: OpDef<EinsumAttrs> = {
  name: 'einsum_embed',
  inputs: ['x'],
  attrs: einsumAttrs,
  outputDatatype: 'same as x',
  differentiable: true,
  internal: true,
  doc: 'x written onto the diagonal of zeros named by an output with repeated letters ("ij->iij"): the adjoint of the diagonal einsum "iij->ij".',
  infer([x], attrs, ctx) {
    const dtype = sameDtype([x!], ['x'], NUMERIC, ctx);
    const { from, to } = embedSpec(attrs, ctx);
    if (from.length !== x!.shape.length) {
      failNode('SHAPE_MISMATCH', ctx, `equation "${attrs.equation}" names ${from.length} axes but x has shape ${fmt(x!.shape)}`, inputAt(0));
    }
    return { shape: to.map((l) => x!.shape[from.indexOf(l)]!), dtype };
  },
  async run([x], attrs, k) {
    const { from, to } = parseEmbed(attrs.equation);
    const unique = [...new Set(to)];
    const perm = unique.map((u) => from.indexOf(u));
    const sizes = perm.map((p) => x!.shape[p]!);
    const xt = perm.every((p, i) => p === i) ? x!.data : await k.transpose(x!.data, [...x!.shape], perm);
    const reps = unique.map((u) => to.filter((l) => l === u).length);
    const steps = sizes.map((n, i) => (reps[i]! > 1 && n > 1 ? (n ** reps[i]! - 1) / (n - 1) : 1));
    const flat = sizes.map((n, i) => n ** reps[i]!);
    const data = await k.sliceBackward(xt, sizes, sizes.map(() => 0), steps, flat);
    // from the grouped layout to the output's order: the k-th axis of a letter goes to its k-th place
    const g = grouped(to);
    const taken = new Set<number>();
    const back = to.map((l) => {
      const j = g.findIndex((m, idx) => m === l && !taken.has(idx));
      taken.add(j);
      return j;
    });
    const gShape = g.map((l) => x!.shape[from.indexOf(l)]!);
    const shape = to.map((l) => x!.shape[from.indexOf(l)]!);
    if (back.every((p, i) => p === i)) return { dtype: x!.dtype, shape, data };
    return { dtype: x!.dtype, shape, data: await k.transpose(data, gShape, back) };
  },
  vjp({ e, g, attrs }) {
    const { from, to } = parseEmbed(attrs.equation);
    return [e.op('einsum', [g], { equation: `${termText(to)}->${termText(from)}` })];
  },
  jvp: ({ e, tangents: [t], attrs }) => e.op('einsum_embed', [t!], { equation: attrs.equation }),
  vmap: vmapEinsum('einsum_embed'),
  samples: [
    { inputs: [{ shape: [3] }], attrs: { equation: 'i->ii' }, note: 'vector onto a diagonal' },
    { inputs: [{ shape: [3, 2] }], attrs: { equation: 'ij->iji' }, note: 'non-adjacent repeat' },
    { inputs: [{ shape: [2, 3] }], attrs: { equation: 'ij->jiij' }, note: 'two repeated letters, reordered' },
  ],
};

export const ops: OpDef[] = [einsum, einsum_embed];
