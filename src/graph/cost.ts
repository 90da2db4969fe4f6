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
import type { CompiledNode } from './validate.js';

export interface PlannedStep {
  node: CompiledNode;
  /** values whose last use is this step (freed after it runs) */
  free: string[];
}

export function bytesOf(m: ValueMeta): number {
  return (symNumel(m.shape) ?? 0) * BYTES_PER_ELEMENT[m.dtype];
}

export function estimateCost(steps: readonly PlannedStep[], metas: Metas, leaves: readonly string[]): CostEstimate {
  let flops = 0;
  let totalBytes = 0;
  let live = 0;
  for (const l of leaves) live += bytesOf(metas.get(l)!);
  totalBytes = live;
  let peak = live;
  for (const s of steps) {
    const out = metas.get(s.node.name)!;
    const ins = s.node.inputs.map((i) => metas.get(i)!);
    flops += s.node.op.flops ? s.node.op.flops(ins, out, s.node.attrs) : (symNumel(out.shape) ?? 0);
    const b = bytesOf(out);
    totalBytes += b;
    live += b;
    if (live > peak) peak = live;
    for (const f of s.free) live -= bytesOf(metas.get(f)!);
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
