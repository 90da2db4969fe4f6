/**
 * Batched products (API.md "Batched derivatives"): B cotangents, tangents or vectors pushed through one derivative
 * graph in one vectorized pass. The derivative graph's seed inputs get a leading batch axis (vmap.ts); its forward part
 * does not depend on the seeds and runs once, unbatched. When the batch does not fit the memory budget in one pass it
 * runs in chunks, the forward part evaluated once beside them (linear.ts, as for Jacobians); when some op of the graph
 * has no batching rule it runs one pass per member and the report says why.
 */
import type { BatchingReport, BatchOptions, ExecStats, RunOptions, Tensors } from '../engine.types.js';
import { GradserveError, fail, fmtBytes, fmtShape } from '../errors.js';
import { nameMap, own } from '../graph/names.js';
import { LruCache } from '../graph/hash.js';
import { freezeGraph } from '../graph/plan.js';
import type { Graph, ValueInfo } from '../graph/types.js';
import { wireConstantBytes } from '../graph/validate.js';
import { allocArray, BYTES_PER_ELEMENT } from '../tensor/dtype.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import { Unbatchable, vmapGraph, type VmapResult } from '../autodiff/vmap.js';
import { DEFAULT_MEMORY_BUDGET_BYTES } from './jacobian.js';
import { innerOptions, planLinear, tensorSpecs, type EngineCore } from './linear.js';

// ---- tensors with a leading batch axis ---------------------------------------------------------------------------

/** Rows [start, start + count) of a batched tensor, as a view. */
export function rows(t: Tensor, start: number, count: number): Tensor {
  const n = numel(t.shape.slice(1));
  return { dtype: t.dtype, shape: [count, ...t.shape.slice(1)], data: t.data.subarray(start * n, (start + count) * n) };
}

/** Member b of a batched tensor, without its batch axis (a view). */
export function member(t: Tensor, b: number): Tensor {
  const n = numel(t.shape.slice(1));
  return { dtype: t.dtype, shape: t.shape.slice(1), data: t.data.subarray(b * n, (b + 1) * n) };
}

/** `t` repeated B times on a new leading axis. */
export function tile(t: Tensor, B: number): Tensor {
  const n = t.data.length;
  const data = allocArray(t.dtype, n * B);
  for (let b = 0; b < B; b++) (data as Float64Array).set(t.data as Float64Array, b * n);
  return { dtype: t.dtype, shape: [B, ...t.shape], data };
}

/** A zeroed [B, ...shape] tensor the chunks are written into. */
function batchOf(info: ValueInfo, B: number): Tensor {
  return { dtype: info.datatype, shape: [B, ...info.shape], data: allocArray(info.datatype, B * numel(info.shape)) };
}

// ---- validation --------------------------------------------------------------------------------------------------

/**
 * The batch size B of batched tensors keyed by value name (`field` is their request field): each needs a leading
 * axis, and all of them the same one. SHAPE_MISMATCH names the tensors and their sizes.
 */
export function batchSize(tensors: Tensors, field: string, what: string): number {
  const names = Object.keys(tensors);
  if (names.length === 0) fail('INVALID_REQUEST', `${field}: a batched ${what} needs at least one tensor, whose leading axis is the batch size B`, field);
  let first: string | undefined;
  for (const n of names) {
    const t = tensors[n]!;
    if (t.shape.length === 0) {
      fail('SHAPE_MISMATCH', `${field}.${n} has shape []: a batched ${what} takes each of its ${field} with one extra leading axis of size B`, `${field}.${n}`);
    }
    if (first === undefined) first = n;
    const B = tensors[first]!.shape[0]!;
    if (t.shape[0] !== B) {
      fail('SHAPE_MISMATCH',
        `${field}.${first} has ${B} on its leading (batch) axis but ${field}.${n} has ${t.shape[0]}: every one of ${field} of a batched ${what} carries the same batch size B`,
        `${field}.${n}`);
    }
  }
  return tensors[first!]!.shape[0]!;
}

/** A batched tensor against its value's shape and datatype: [B, ...shape]. */
export function checkBatched(t: Tensor, want: ValueInfo, path: string, role: string): void {
  const rest = t.shape.slice(1);
  if (rest.length !== want.shape.length || rest.some((d, i) => d !== want.shape[i])) {
    fail('SHAPE_MISMATCH', `${path}: a batched ${role} has shape [B, ...${fmtShape(want.shape)}] = ${fmtShape([t.shape[0]!, ...want.shape])}, got ${fmtShape(t.shape)}`, path);
  }
  if (t.dtype !== want.datatype) fail('DATATYPE_MISMATCH', `${path}: the ${role} is ${t.dtype} but the value is ${want.datatype}`, path);
}

// ---- memory ------------------------------------------------------------------------------------------------------

export interface BatchBudget {
  /** "batched vjp", "per-example gradients" */
  what: string;
  /** "B" or "N" */
  letter: string;
  size: number;
  /** bytes of one member's pass (everything it reads and makes, the unbatched values included) */
  oneBytes: number;
  /** bytes each further member keeps: its seed and its results */
  perMemberBytes: number;
  /** each batched result's unbatched shape, for the per-tensor element limit */
  results: Record<string, readonly number[]>;
}

/**
 * The size guard before anything is allocated: the whole batch of seeds and results beside one member's pass must fit
 * the budget, and each batched result the element limit. The refusal says how many bytes the batch needs and the
 * largest batch that would fit.
 */
export function checkBatchBudget(g: BatchBudget, opts: RunOptions): number {
  const budget = opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;
  const need = g.oneBytes + Math.max(0, g.size - 1) * g.perMemberBytes;
  const fit = g.oneBytes > budget ? 0 : g.perMemberBytes === 0 ? Infinity : 1 + Math.floor((budget - g.oneBytes) / g.perMemberBytes);
  let largest = fit;
  let over: string | undefined;
  if (opts.maxTensorElements !== undefined) {
    for (const [name, shape] of Object.entries(g.results)) {
      const per = numel(shape);
      if (per === 0) continue;
      const most = Math.floor(opts.maxTensorElements / per);
      if (most < largest) largest = most;
      if (over === undefined && g.size * per > opts.maxTensorElements) {
        over = `${name} ${fmtShape([g.size, ...shape])} would have ${g.size * per} elements, over the limit of ${opts.maxTensorElements} per tensor`;
      }
    }
  }
  const fits = largest === Infinity ? '' : `; the largest batch that fits is ${g.letter} = ${largest}`;
  if (need > budget) {
    throw new GradserveError('TOO_LARGE',
      `${g.what} of ${g.letter} = ${g.size} needs ${fmtBytes(need)} (${need} bytes: ${fmtBytes(g.oneBytes)} for one member's pass and ` +
      `${fmtBytes(g.perMemberBytes)} for each further member's inputs and results), over the memory budget of ${fmtBytes(budget)}${fits}`);
  }
  if (over !== undefined) throw new GradserveError('TOO_LARGE', `${g.what} of ${g.letter} = ${g.size}: ${over}${fits}`);
  return need;
}

function bytesOf(info: ValueInfo | undefined): number {
  return info === undefined ? 0 : numel(info.shape) * BYTES_PER_ELEMENT[info.datatype];
}

/** Largest number of elements of any value of a graph. */
function largestValue(values: Record<string, ValueInfo>): number {
  let m = 0;
  for (const v of Object.values(values)) m = Math.max(m, numel(v.shape));
  return m;
}

// ---- the vectorized run ------------------------------------------------------------------------------------------

/** Vectorized graphs by (derivative graph, seeds, batch size): a repeated call skips vmap and re-hashing. */
const vmapCache = new LruCache<VmapResult>(128, 1 << 28, (v) => wireConstantBytes(v.graph));

function vmapCached(key: string | undefined, graph: Graph, seeds: readonly string[], values: Record<string, ValueInfo>, count: number): VmapResult {
  const k = key === undefined ? undefined : `${key}|${seeds.join(',')}|${count}`;
  const hit = k === undefined ? undefined : vmapCache.get(k);
  if (hit) return hit;
  const vm = vmapGraph(graph, seeds, values, count);
  freezeGraph(vm.graph);
  if (k !== undefined) vmapCache.set(k, vm);
  return vm;
}

export interface BatchedProblem {
  /** The derivative graph: graph inputs, seed inputs and constants to `plain` and `batched` outputs. */
  derived: Graph;
  /** Identifies `derived` for the vectorized-graph cache (undefined: not cached). */
  key?: string;
  /** Tensors for the graph inputs of `derived` other than the seeds. */
  inputs: Tensors;
  /** Seed input -> batched tensor [B, ...]. */
  seeds: Tensors;
  B: number;
  /** Outputs that do not depend on the seeds (forward values, a batched hvp's gradients): computed once. */
  plain: string[];
  /** Outputs that get the batch axis (a seed-independent one is repeated B times). */
  batched: string[];
  /** Each batched output as the response names it (`gradients.w`), for messages. */
  labels: Record<string, string>;
  what: string;
}

export interface BatchedRun {
  plain: Tensors;
  batched: Tensors;
  report: BatchingReport;
}

const recoverable = (e: unknown): boolean =>
  e instanceof Unbatchable || (e instanceof GradserveError && !['CANCELLED', 'DEADLINE_EXCEEDED', 'TOO_LARGE'].includes(e.code));

/**
 * Runs B products of a derivative graph: one vectorized pass when the batch fits the budget, chunks of it when it
 * does not (the seed-independent part evaluated once), one pass per member when the graph cannot be vectorized.
 */
export async function runBatched(core: EngineCore, p: BatchedProblem, opts: BatchOptions): Promise<BatchedRun> {
  const seedNames = Object.keys(p.seeds);
  const specs: Record<string, ValueInfo> = tensorSpecs(p.inputs);
  for (const s of seedNames) specs[s] = { shape: p.seeds[s]!.shape.slice(1), datatype: p.seeds[s]!.dtype };
  const one = core.shapes(p.derived, specs);
  const resultShapes: Record<string, readonly number[]> = {};
  for (const o of p.batched) resultShapes[p.labels[o] ?? o] = one.values[o]!.shape;
  const perMember = seedNames.reduce((s, n) => s + bytesOf(specs[n]), 0) + p.batched.reduce((s, o) => s + bytesOf(one.values[o]), 0);
  const need = checkBatchBudget({ what: p.what, letter: 'B', size: p.B, oneBytes: one.peakBytes, perMemberBytes: perMember, results: resultShapes }, opts);
  const budget = opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;

  // what the call returns, for the caller's check of the answer's size before anything runs
  const info = (o: string): ValueInfo => one.values[o]!;
  const returned = [
    ...p.plain.map((o) => ({ name: o, shape: info(o).shape, datatype: info(o).datatype })),
    ...p.batched.map((o) => ({ name: o, shape: [p.B, ...info(o).shape], datatype: info(o).datatype })),
  ];
  const stats: ExecStats = { nodes: 0, flops: 0, bytes: 0 };
  const inner = innerOptions(opts, stats);
  const report: BatchingReport = { size: p.B, vectorized: true, chunk: p.B, passes: 0 };
  const finish = (run: Omit<BatchedRun, 'report'>): BatchedRun => {
    opts.onExecuted?.(stats);
    return { ...run, report };
  };

  if (p.B === 0) {
    await opts.onPlan?.({ flops: one.flops, peakBytes: one.peakBytes, totalBytes: one.peakBytes, outputs: returned });
    report.chunk = 0;
    const zeros: Tensors = nameMap();
    for (const s of seedNames) zeros[s] = { dtype: specs[s]!.datatype, shape: specs[s]!.shape, data: allocArray(specs[s]!.datatype, numel(specs[s]!.shape)) };
    const plain = p.plain.length === 0 ? {} : (await core.evaluate(p.derived, { ...p.inputs, ...zeros }, p.plain, inner)).outputs;
    const batched: Tensors = nameMap();
    for (const o of p.batched) batched[o] = batchOf(one.values[o]!, 0);
    report.passes = p.plain.length === 0 ? 0 : 1;
    return finish({ plain, batched });
  }

  // The chunk: the whole batch when its vectorized pass fits the budget, else halved until a chunk's pass fits
  // beside the other members' seeds and results (shape inference only; nothing runs yet).
  let chunk = Math.min(p.B, Math.max(1, opts.batchChunk ?? Infinity));
  let reason: string | undefined = opts.vectorize === false ? 'vectorize: false' : undefined;
  let peak = need;
  if (reason === undefined) {
    try {
      for (;;) {
        const vm = vmapCached(p.key, p.derived, seedNames, one.values, chunk);
        const batchedSpecs = { ...specs };
        for (const s of seedNames) batchedSpecs[s] = { shape: [chunk, ...specs[s]!.shape], datatype: specs[s]!.datatype };
        const shapes = core.shapes(vm.graph, batchedSpecs);
        const total = shapes.peakBytes + (p.B - chunk) * perMember;
        const elementsOk = opts.maxTensorElements === undefined || largestValue(shapes.values) <= opts.maxTensorElements;
        if ((total <= budget && elementsOk) || chunk === 1) {
          peak = Math.max(total, need);
          break;
        }
        chunk = Math.max(1, Math.floor(chunk / 2));
      }
    } catch (e) {
      if (!recoverable(e)) throw e;
      reason = e instanceof Error ? e.message : String(e);
    }
  }
  await opts.onPlan?.({ flops: one.flops * p.B, peakBytes: Math.min(budget, peak), totalBytes: Math.min(budget, peak), outputs: returned });

  if (reason === undefined && chunk === p.B) {
    // One pass: the forward part unbatched, the products vectorized.
    const vm = vmapCached(p.key, p.derived, seedNames, one.values, chunk);
    const outs = [...new Set([...p.plain, ...p.batched])];
    const r = (await core.evaluate(vm.graph, { ...p.inputs, ...p.seeds }, outs, inner)).outputs;
    const plain: Tensors = nameMap();
    for (const o of p.plain) plain[o] = r[o]!;
    const batched: Tensors = nameMap();
    for (const o of p.batched) batched[o] = vm.batchedOutputs[o] ? r[o]! : tile(r[o]!, p.B);
    report.passes = 1;
    return finish({ plain, batched });
  }

  // Chunks (or a loop): the seed-independent part once, then the part linear in the seeds per chunk.
  const plan = await planLinear(core, p.derived, p.derived, seedNames, p.inputs, [], inner);
  const plain: Tensors = nameMap();
  for (const o of p.plain) if (own(plan.constant, o) !== undefined) plain[o] = plan.constant[o]!;
  const missing = p.plain.filter((o) => own(plain, o) === undefined);
  if (missing.length > 0) {
    // a forward output that is a graph constant: not part of the split
    const seeds: Tensors = nameMap();
    for (const s of seedNames) seeds[s] = member(p.seeds[s]!, 0);
    Object.assign(plain, (await core.evaluate(p.derived, { ...p.inputs, ...seeds }, missing, inner)).outputs);
  }
  const batched: Tensors = nameMap();
  for (const o of p.batched) if (own(plan.constant, o) !== undefined) batched[o] = tile(plan.constant[o]!, p.B);
  const linear = p.batched.filter((o) => own(plan.constant, o) === undefined);
  for (const o of linear) batched[o] = batchOf(one.values[o]!, p.B);
  /** Members [start, ...) of output o, from a batched chunk or one member's result. */
  const write = (o: string, start: number, t: Tensor): void => {
    const dst = batched[o]!;
    (dst.data as Float64Array).set(t.data as Float64Array, start * numel(dst.shape.slice(1)));
  };
  const linearSpecs: Record<string, ValueInfo> = { ...tensorSpecs(plan.fixed) };
  for (const s of seedNames) linearSpecs[s] = specs[s]!;

  if (reason === undefined) {
    try {
      const linearShapes = core.shapes(plan.graph, linearSpecs).values;
      const build = (count: number) => vmapGraph(plan.graph, seedNames, linearShapes, count);
      const full = build(chunk);
      let passes = 0;
      for (let start = 0; start < p.B; start += chunk) {
        const count = Math.min(chunk, p.B - start);
        const vm = count === chunk ? full : build(count);
        const seeds: Tensors = nameMap();
        for (const s of seedNames) seeds[s] = rows(p.seeds[s]!, start, count);
        const r = (await core.evaluate(vm.graph, { ...plan.fixed, ...seeds }, linear, inner)).outputs;
        passes++;
        for (const o of linear) write(o, start, vm.batchedOutputs[o] ? r[o]! : tile(r[o]!, count));
      }
      report.chunk = chunk;
      report.passes = passes;
      return finish({ plain, batched });
    } catch (e) {
      if (!recoverable(e)) throw e;
      reason = e instanceof Error ? e.message : String(e);
    }
  }

  // The loop: one pass of the linear part per member.
  for (let b = 0; b < p.B; b++) {
    const seeds: Tensors = nameMap();
    for (const s of seedNames) seeds[s] = member(p.seeds[s]!, b);
    const r = (await core.evaluate(plan.graph, { ...plan.fixed, ...seeds }, linear, inner)).outputs;
    for (const o of linear) write(o, b, r[o]!);
  }
  report.vectorized = false;
  report.chunk = 1;
  report.passes = p.B;
  report.reason = reason;
  return finish({ plain, batched });
}

/** Shape and datatype of each batched tensor's members (without the leading axis): a cache key's signature. */
export function memberMetas(tensors: Tensors): Record<string, Pick<Tensor, 'dtype' | 'shape'>> {
  const out: Record<string, Pick<Tensor, 'dtype' | 'shape'>> = {};
  for (const [k, t] of Object.entries(tensors)) out[k] = { dtype: t.dtype, shape: t.shape.slice(1) };
  return out;
}
