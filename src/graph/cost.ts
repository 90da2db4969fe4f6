/**
 * Cost estimate of a plan before anything runs: flops, bytes of every value, and the peak of live bytes under the
 * executor's policy (inputs and constants live throughout; a node's output is allocated when it runs and freed after
 * its last consumer, unless it is a requested output). Also the limit checks that must refuse shape bombs before any
 * allocation (TOO_LARGE).
 */
import { fail, fmtBytes, fmtShape } from '../errors.js';
import type { CostEstimate, RunOptions } from '../engine.types.js';
import type { ValueMeta } from '../ops/types.js';
import { BYTES_PER_ELEMENT } from '../tensor/dtype.js';
import { symNumel } from '../tensor/shape.js';
import type { Metas } from './infer.js';
import type { CompiledGraph, CompiledNode } from './validate.js';

export interface PlannedStep {
  node: CompiledNode;
  /** values whose last use is this step (freed after it runs) */
  free: string[];
}

export function bytesOf(m: ValueMeta): number {
  return (symNumel(m.shape) ?? 0) * BYTES_PER_ELEMENT[m.dtype];
}

/**
 * Whether the step's output shares its first input's buffer (`OpDef.aliases`: its `run` returns the input's data).
 * Counting those as fresh allocations would overstate the peak of every derivative graph, which ends each gradient
 * with an `identity`.
 */
function aliasesFirstInput(s: PlannedStep, metas: Metas): boolean {
  const aliases = s.node.op.aliases;
  if (aliases === 'always') return true;
  if (aliases !== 'same-shape') return false;
  const a = metas.get(s.node.inputs[0]!)!.shape;
  const b = metas.get(s.node.name)!.shape;
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function estimateCost(steps: readonly PlannedStep[], metas: Metas, leaves: readonly string[]): CostEstimate {
  let flops = 0;
  let live = 0;
  for (const l of leaves) live += bytesOf(metas.get(l)!);
  let totalBytes = live;
  let peak = live;
  // a buffer is released when the last value sharing it is freed
  const leafSet = new Set(leaves);
  const root = new Map<string, string>();
  const holders = new Map<string, number>();
  for (const s of steps) {
    const name = s.node.name;
    const out = metas.get(name)!;
    const ins = s.node.inputs.map((i) => metas.get(i)!);
    flops += s.node.op.flops ? s.node.op.flops(ins, out, s.node.attrs) : (symNumel(out.shape) ?? 0);
    if (aliasesFirstInput(s, metas)) {
      const r = root.get(s.node.inputs[0]!) ?? s.node.inputs[0]!;
      root.set(name, r);
      holders.set(r, (holders.get(r) ?? 1) + 1);
    } else {
      const b = bytesOf(out);
      totalBytes += b;
      live += b;
      root.set(name, name);
      holders.set(name, 1);
      if (live > peak) peak = live;
    }
    for (const f of s.free) {
      const r = root.get(f) ?? f;
      const h = (holders.get(r) ?? 1) - 1;
      holders.set(r, h);
      if (h === 0 && !leafSet.has(r)) live -= bytesOf(metas.get(r)!);
    }
  }
  return { flops, peakBytes: peak, totalBytes };
}

/** Default limits when RunOptions leaves them out: the largest typed array V8 allocates is 2^32 - 1 elements. */
export const DEFAULT_MAX_TENSOR_ELEMENTS = 2 ** 32 - 1;

export function checkLimits(steps: readonly PlannedStep[], metas: Metas, cost: CostEstimate, opts: RunOptions | undefined): void {
  const maxEl = opts?.maxTensorElements ?? DEFAULT_MAX_TENSOR_ELEMENTS;
  for (const s of steps) {
    const m = metas.get(s.node.name)!;
    const n = symNumel(m.shape) ?? 0;
    if (n > maxEl) {
      fail('TOO_LARGE', `node "${s.node.name}" (${s.node.op.name}) would produce ${fmtShape(m.shape as number[])} = ${n} elements (${fmtBytes(bytesOf(m))}), over the limit of ${maxEl} elements per tensor`, s.node.path);
    }
  }
  const budget = opts?.memoryBudgetBytes;
  if (budget !== undefined && cost.peakBytes > budget) {
    fail('TOO_LARGE', `running this graph needs ${fmtBytes(cost.peakBytes)} at its peak, over the memory budget of ${fmtBytes(budget)}`);
  }
}

/**
 * The per-tensor element limit on every value a shapes request reports (inputs, constants, nodes): `shapes` allocates
 * nothing, but a graph it accepts should also be one that evaluate would run, so a shape bomb is refused the same way.
 */
export function checkValueElements(c: CompiledGraph, metas: Metas, opts: RunOptions, inputsPrefix = 'inputs'): void {
  const maxEl = opts.maxTensorElements ?? DEFAULT_MAX_TENSOR_ELEMENTS;
  for (const [name, m] of metas) {
    const n = symNumel(m.shape) ?? 0;
    if (n <= maxEl) continue;
    const kind = c.kinds.get(name);
    const what = kind === 'node' ? `node "${name}" (${c.nodes.get(name)!.op.name}) would produce` : `${kind} "${name}" has`;
    const path = kind === 'node' ? c.nodes.get(name)!.path : kind === 'constant' ? `graph.constants.${name}` : `${inputsPrefix}.${name}`;
    fail('TOO_LARGE', `${what} ${fmtShape(m.shape as number[])} = ${n} elements (${fmtBytes(bytesOf(m))}), over the limit of ${maxEl} elements per tensor`, path);
  }
}
