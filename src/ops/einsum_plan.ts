/**
 * Einsum equations: the parser (explicit `->` required, letters a-z A-Z, at most one `...` per term, spaces ignored;
 * errors name the character index at fault), the size rule (a letter's sizes agree or are 1, which broadcasts, as
 * NumPy and PyTorch; `...` axes broadcast right-aligned; an operand's `...` axes missing from the output are summed, as
 * PyTorch), and the execution plan: each operand's diagonals (repeated letters) are strided slices of a transposed,
 * flattened view, letters no one else needs are summed, and the operands are contracted left to right, each pair as
 * one batched matmul (or a broadcasting mul when nothing is contracted) between transposes and reshapes. Pure: shapes
 * in, steps out; src/ops/einsum.ts runs the steps on the kernels.
 */

/** Thrown by the parser: `index` is the position in the equation string at fault. */
export class EquationError extends Error {
  constructor(readonly index: number, message: string) {
    super(message);
  }
}

/** Letter codes: a-z are 0-25, A-Z 26-51; the k-th `...` axis (right-aligned to the widest) is ELLIPSIS + k. */
export const ELLIPSIS = 52;
/** Where a term's `...` stands in its label list. */
export const DOTS = -1;

export interface Term {
  /** letter codes in order, DOTS where `...` stands */
  labels: number[];
  /** index in the equation of each label (of the first '.' for DOTS) */
  pos: number[];
}

export interface Equation {
  inputs: Term[];
  output: Term;
}

const isLetter = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
export const letterCode = (c: string): number => (c >= 'a' ? c.charCodeAt(0) - 97 : c.charCodeAt(0) - 65 + 26);
export const letterOf = (code: number): string => String.fromCharCode(code < 26 ? 97 + code : 65 + code - 26);

/**
 * Parses an equation; throws EquationError naming the index at fault. `repeatedOutput` lets an output letter repeat
 * (the internal einsum_embed writes onto diagonals).
 */
export function parseEquation(eq: string, repeatedOutput = false): Equation {
  const inputs: Term[] = [{ labels: [], pos: [] }];
  let output: Term | undefined;
  const where = (): string => (output !== undefined ? 'the output' : `operand ${inputs.length - 1}`);
  let i = 0;
  while (i < eq.length) {
    const c = eq[i]!;
    const cur = output ?? inputs[inputs.length - 1]!;
    if (c === ' ') {
      i++;
    } else if (isLetter(c)) {
      cur.labels.push(letterCode(c));
      cur.pos.push(i);
      i++;
    } else if (c === '.') {
      if (eq.slice(i, i + 3) !== '...') throw new EquationError(i, `'.' at index ${i} is not part of an ellipsis '...'`);
      const first = cur.labels.indexOf(DOTS);
      if (first >= 0) throw new EquationError(i, `a second '...' at index ${i} in ${where()} (the first is at index ${cur.pos[first]})`);
      cur.labels.push(DOTS);
      cur.pos.push(i);
      i += 3;
    } else if (c === ',') {
      if (output !== undefined) throw new EquationError(i, `',' at index ${i} after '->': the output is a single term`);
      inputs.push({ labels: [], pos: [] });
      i++;
    } else if (c === '-') {
      if (eq[i + 1] !== '>') throw new EquationError(i, `'-' at index ${i} is not followed by '>'`);
      if (output !== undefined) throw new EquationError(i, `a second '->' at index ${i}`);
      output = { labels: [], pos: [] };
      i += 2;
    } else if (c === '>') {
      throw new EquationError(i, `'>' at index ${i} is not preceded by '-'`);
    } else {
      throw new EquationError(i, `character '${c}' at index ${i} is not a letter (a-z, A-Z), ',', '...', '->' or a space`);
    }
  }
  if (output === undefined) {
    throw new EquationError(eq.length, `no '->' (index ${eq.length} is the end): the output subscripts must be explicit, e.g. "ij,jk->ik"`);
  }
  const inInputs = new Set(inputs.flatMap((t) => t.labels));
  output.labels.forEach((l, k) => {
    if (l === DOTS) return;
    const first = output!.labels.indexOf(l);
    if (first !== k && !repeatedOutput) throw new EquationError(output!.pos[k]!, `output index '${letterOf(l)}' at index ${output!.pos[k]} repeats (first at index ${output!.pos[first]})`);
    if (!inInputs.has(l)) throw new EquationError(output!.pos[k]!, `output index '${letterOf(l)}' at index ${output!.pos[k]} appears in no operand`);
  });
  return { inputs, output };
}

/** How a size rule fails: which operand, and the message. */
export class SizeError extends Error {
  constructor(readonly operand: number, message: string) {
    super(message);
  }
}

type Dim = number | null;

/** Number of `...` axes of each operand (its rank minus its letters); throws SizeError when the rank is too small. */
export function ellipsisRanks(eq: Equation, ranks: readonly number[], fmt: (i: number) => string): number[] {
  return eq.inputs.map((t, i) => {
    const letters = t.labels.filter((l) => l !== DOTS).length;
    const dots = t.labels.includes(DOTS);
    const r = ranks[i]!;
    if (dots ? r < letters : r !== letters) {
      const sub = t.labels.map((l) => (l === DOTS ? '...' : letterOf(l))).join('');
      throw new SizeError(i, `operand ${i} has shape ${fmt(i)} (rank ${r}) but its subscripts "${sub}" name ${dots ? 'at least ' : ''}${letters} ax${letters === 1 ? 'is' : 'es'}`);
    }
    return dots ? r - letters : 0;
  });
}

/** Each operand's label per axis, `...` expanded to ELLIPSIS + k (right-aligned to the widest `...`). */
export function expandLabels(eq: Equation, eRanks: readonly number[]): { inputs: number[][]; output: number[]; width: number } {
  const width = Math.max(0, ...eRanks);
  const expand = (t: Term, e: number): number[] =>
    t.labels.flatMap((l) => (l === DOTS ? Array.from({ length: e }, (_, k) => ELLIPSIS + width - e + k) : [l]));
  return { inputs: eq.inputs.map((t, i) => expand(t, eRanks[i]!)), output: expand(eq.output, width), width };
}

const labelName = (l: number): string => (l >= ELLIPSIS ? `'...' axis ${l - ELLIPSIS}` : `index '${letterOf(l)}'`);

/**
 * The size of every label: occurrences agree, or are 1 (broadcast); repeated letters within one operand must agree
 * exactly. Unknown (null) sizes agree with anything; the result is null when no occurrence pins it.
 */
export function labelSizes(labels: readonly number[][], shapes: readonly (readonly Dim[])[], fmt: (i: number) => string): Map<number, Dim> {
  const seen = new Map<number, { op: number; d: Dim }[]>();
  labels.forEach((ls, i) => {
    const own = new Map<number, Dim>();
    ls.forEach((l, ax) => {
      const d = shapes[i]![ax]!;
      if (!own.has(l)) return void own.set(l, d);
      const p = own.get(l)!;
      if (p !== null && d !== null && p !== d) throw new SizeError(i, `${labelName(l)} repeats in operand ${i} ${fmt(i)} with sizes ${p} and ${d}`);
      if (p === null) own.set(l, d);
    });
    for (const [l, d] of own) {
      const list = seen.get(l) ?? [];
      const pinned = list.find((o) => o.d !== null && o.d !== 1);
      if (pinned !== undefined && d !== null && d !== 1 && d !== pinned.d) {
        throw new SizeError(i, `${labelName(l)} has size ${pinned.d} in operand ${pinned.op} ${fmt(pinned.op)} but ${d} in operand ${i} ${fmt(i)}`);
      }
      list.push({ op: i, d });
      seen.set(l, list);
    }
  });
  const size = new Map<number, Dim>();
  for (const [l, list] of seen) {
    const pinned = list.find((o) => o.d !== null && o.d !== 1);
    size.set(l, pinned !== undefined ? pinned.d : list.some((o) => o.d === null) ? null : 1);
  }
  return size;
}

// ---- the plan ----

/** One kernel step over registers (0..n-1 hold the operands). */
export type Step =
  | { op: 'transpose'; src: number; perm: number[]; dst: number }
  | { op: 'reshape'; src: number; shape: number[]; dst: number }
  | { op: 'slice'; src: number; starts: number[]; steps: number[]; shape: number[]; dst: number }
  | { op: 'sum'; src: number; axes: number[]; dst: number }
  | { op: 'matmul'; a: number; b: number; transA: boolean; transB: boolean; dst: number }
  | { op: 'mul'; a: number; b: number; dst: number };

export interface Plan {
  steps: Step[];
  /** the register holding the result (already in the output's shape) */
  result: number;
  shape: number[];
  flops: number;
}

interface Slot { reg: number; labels: number[]; shape: number[] }

const prod = (s: readonly number[]): number => s.reduce((p, d) => p * d, 1);
const isIdentity = (perm: readonly number[]): boolean => perm.every((p, i) => p === i);

class Planner {
  steps: Step[] = [];
  flops = 0;
  private next: number;
  constructor(operands: number) {
    this.next = operands;
  }

  private reg(): number {
    return this.next++;
  }

  transpose(s: Slot, order: readonly number[]): Slot {
    const perm = order.map((l) => s.labels.indexOf(l));
    if (isIdentity(perm)) return s;
    const dst = this.reg();
    this.steps.push({ op: 'transpose', src: s.reg, perm, dst });
    return { reg: dst, labels: [...order], shape: perm.map((p) => s.shape[p]!) };
  }

  reshape(s: Slot, shape: number[], labels: number[]): Slot {
    if (shape.length === s.shape.length && shape.every((d, i) => d === s.shape[i])) return { ...s, labels };
    const dst = this.reg();
    this.steps.push({ op: 'reshape', src: s.reg, shape, dst });
    return { reg: dst, labels, shape };
  }

  sum(s: Slot, drop: ReadonlySet<number>): Slot {
    const axes = s.labels.flatMap((l, i) => (drop.has(l) ? [i] : []));
    if (axes.length === 0) return s;
    const dst = this.reg();
    this.steps.push({ op: 'sum', src: s.reg, axes, dst });
    this.flops += prod(s.shape);
    return { reg: dst, labels: s.labels.filter((l) => !drop.has(l)), shape: s.shape.filter((_, i) => !axes.includes(i)) };
  }

  /** The diagonal over each repeated label: group its axes, flatten each group, take a strided slice. */
  diagonal(s: Slot): Slot {
    const unique = [...new Set(s.labels)];
    if (unique.length === s.labels.length) return s;
    const grouped = unique.flatMap((u) => s.labels.flatMap((l, i) => (l === u ? [i] : [])));
    let t = s;
    if (!isIdentity(grouped)) {
      const dst = this.reg();
      this.steps.push({ op: 'transpose', src: s.reg, perm: grouped, dst });
      t = { reg: dst, labels: grouped.map((p) => s.labels[p]!), shape: grouped.map((p) => s.shape[p]!) };
    }
    const sizes = unique.map((u) => s.shape[s.labels.indexOf(u)]!);
    const reps = unique.map((u) => s.labels.filter((l) => l === u).length);
    const flat = this.reshape(t, sizes.map((n, k) => n ** reps[k]!), unique);
    const dst = this.reg();
    // the diagonal of an n^r block is every (1 + n + ... + n^(r-1))-th element
    const steps = sizes.map((n, k) => (reps[k]! > 1 && n > 1 ? (n ** reps[k]! - 1) / (n - 1) : 1));
    this.steps.push({ op: 'slice', src: flat.reg, starts: sizes.map(() => 0), steps, shape: sizes, dst });
    return { reg: dst, labels: unique, shape: sizes };
  }

  /** Drops the axes of size 1 whose label is larger elsewhere (they broadcast). */
  squeezeBroadcast(s: Slot, size: ReadonlyMap<number, number>): Slot {
    const keep = s.labels.map((l, i) => !(s.shape[i] === 1 && size.get(l)! > 1));
    if (keep.every(Boolean)) return s;
    return this.reshape(s, s.shape.filter((_, i) => keep[i]), s.labels.filter((_, i) => keep[i]));
  }

  contract(a: Slot, b: Slot, keep: ReadonlySet<number>, size: ReadonlyMap<number, number>): Slot {
    const inB = new Set(b.labels);
    const inA = new Set(a.labels);
    const batch = a.labels.filter((l) => inB.has(l) && keep.has(l));
    const contr = a.labels.filter((l) => inB.has(l) && !keep.has(l));
    const aOnly = a.labels.filter((l) => !inB.has(l));
    const bOnly = b.labels.filter((l) => !inA.has(l));
    const sz = (ls: readonly number[]): number[] => ls.map((l) => size.get(l)!);
    const outLabels = [...batch, ...aOnly, ...bOnly];
    const outShape = sz(outLabels);
    const M = prod(sz(aOnly)), N = prod(sz(bOnly)), K = prod(sz(contr)), B = prod(sz(batch));
    if (contr.length === 0 || (M === 1 && N === 1)) {
      // nothing to contract (or one dot product per batch member): a broadcasting product, then a sum
      const at = this.transpose(a, [...batch, ...contr, ...aOnly]);
      const bt = this.transpose(b, [...batch, ...contr, ...bOnly]);
      const ones = (ls: readonly number[]): number[] => ls.map(() => 1);
      const ar = this.reshape(at, [...sz(batch), ...sz(contr), ...sz(aOnly), ...ones(bOnly)], [...batch, ...contr, ...aOnly]);
      const br = this.reshape(bt, [...sz(batch), ...sz(contr), ...ones(aOnly), ...sz(bOnly)], [...batch, ...contr, ...bOnly]);
      const dst = this.reg();
      this.steps.push({ op: 'mul', a: ar.reg, b: br.reg, dst });
      const prodLabels = [...batch, ...contr, ...aOnly, ...bOnly];
      this.flops += B * K * M * N;
      return this.sum({ reg: dst, labels: prodLabels, shape: sz(prodLabels) }, new Set(contr));
    }
    const same = (s: Slot, order: readonly number[]): boolean => s.labels.length === order.length && s.labels.every((l, i) => l === order[i]);
    let transA = false;
    let at: Slot;
    if (same(a, [...batch, ...contr, ...aOnly])) {
      transA = true;
      at = a;
    } else {
      at = this.transpose(a, [...batch, ...aOnly, ...contr]);
    }
    let transB = false;
    let bt: Slot;
    if (same(b, [...batch, ...bOnly, ...contr])) {
      transB = true;
      bt = b;
    } else {
      bt = this.transpose(b, [...batch, ...contr, ...bOnly]);
    }
    const lead = batch.length > 0 ? [B] : [];
    const ar = this.reshape(at, [...lead, ...(transA ? [K, M] : [M, K])], at.labels);
    const br = this.reshape(bt, [...lead, ...(transB ? [N, K] : [K, N])], bt.labels);
    const dst = this.reg();
    this.steps.push({ op: 'matmul', a: ar.reg, b: br.reg, transA, transB, dst });
    this.flops += 2 * B * M * N * K;
    return this.reshape({ reg: dst, labels: outLabels, shape: [...lead, M, N] }, outShape, outLabels);
  }
}

/** The steps computing the einsum of operands with concrete `shapes` (validated by the size rule beforehand). */
export function planEinsum(eq: Equation, shapes: readonly (readonly number[])[]): Plan {
  const eRanks = ellipsisRanks(eq, shapes.map((s) => s.length), (i) => `[${shapes[i]!.join(', ')}]`);
  const { inputs, output } = expandLabels(eq, eRanks);
  const size = labelSizes(inputs, shapes, (i) => `[${shapes[i]!.join(', ')}]`) as Map<number, number>;
  const p = new Planner(shapes.length);
  let slots: Slot[] = inputs.map((labels, i) => p.squeezeBroadcast(p.diagonal({ reg: i, labels, shape: [...shapes[i]!] }), size));
  const outSet = new Set(output);
  // letters only one operand has and the output lacks are summed right away
  slots = slots.map((s, i) => {
    const elsewhere = new Set(slots.flatMap((o, j) => (j === i ? [] : o.labels)));
    return p.sum(s, new Set(s.labels.filter((l) => !outSet.has(l) && !elsewhere.has(l))));
  });
  let acc = slots[0]!;
  for (let j = 1; j < slots.length; j++) {
    const keep = new Set([...output, ...slots.slice(j + 1).flatMap((s) => s.labels)]);
    acc = p.contract(acc, slots[j]!, keep, size);
  }
  acc = p.sum(acc, new Set(acc.labels.filter((l) => !outSet.has(l))));
  acc = p.transpose(acc, output);
  const shape = output.map((l) => size.get(l)!);
  acc = p.reshape(acc, shape, output);
  return { steps: p.steps, result: acc.reg, shape, flops: p.flops };
}

/** The label list as equation text (letters only; callers map `...` axes to letters first). */
export const termText = (labels: readonly number[]): string => labels.map(letterOf).join('');
