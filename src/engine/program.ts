/**
 * Plans compiled into native programs (binding/program.h): one native run per execution, JS never between two
 * kernels, intermediates in pooled native memory freed at their last use.
 *
 * A plan is traced by running every op's own `run` once with a kernel facade whose calls append steps to a native
 * program instead of computing: op definitions stay the single place that says which kernels an op uses. Values are
 * SlotRefs while tracing; an op that touches its data in JS (rather than handing it to kernels) cannot be traced,
 * and its plan runs node by node instead (executor.ts). Traced programs are kept per plan; a program is not
 * re-entrant, so concurrent runs of one plan take separate instances (a few are kept idle per plan).
 */
import { GradserveError } from '../errors.js';
import type { ExecStats, RunOptions } from '../engine.types.js';
import { ASYNC_THRESHOLD, INLINE_PROGRAM_FLOPS, INLINE_PROGRAM_WORK, type KernelFns, type Kernels, type NativeProgram, type ProgramFigures, type SlotRef } from '../kernels.types.js';
import type { OpKernels } from '../ops/types.js';
import { arrayOver, BYTES_PER_ELEMENT, type TypedArray } from '../tensor/dtype.js';
import { sameShape } from '../tensor/shape.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import type { Plan } from '../graph/plan.js';

/** An op read or wrote its data in JS during tracing. */
export class Untraceable extends Error {}

const refs = new WeakSet<object>();

/** A SlotRef that refuses every use but being handed to a kernel, so a JS computation on it fails the trace. */
function guardRef(r: SlotRef): SlotRef {
  const p = new Proxy(r, {
    get(target, key) {
      if (key === 'slot' || key === 'length') return target[key];
      // awaiting or inspecting a value looks for these; they must read as absent, not fail
      if (key === 'then' || typeof key === 'symbol') return undefined;
      throw new Untraceable(`reads .${String(key)} of its data in JS`);
    },
    has: (_t, key) => key === 'slot' || key === 'length',
    set() {
      throw new Untraceable('writes its data in JS');
    },
  });
  refs.add(p);
  return p;
}

function isRef(v: unknown): v is SlotRef {
  return typeof v === 'object' && v !== null && refs.has(v);
}

function guardResult(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if ('slot' in v) return guardRef(v as SlotRef);
  const s = v as { data?: unknown; shape?: unknown };
  if (typeof s.data === 'object' && s.data !== null && 'slot' in s.data) return { data: guardRef(s.data as SlotRef), shape: s.shape };
  return v;
}

function tracingKernels(p: NativeProgram, names: readonly (keyof KernelFns)[]): OpKernels {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of names) {
    out[name] = (...args: unknown[]) => {
      try {
        return Promise.resolve(guardResult(p.call(name, args)));
      } catch (e) {
        return Promise.reject(e);
      }
    };
  }
  return out as unknown as OpKernels;
}

/** Where each requested output comes from after a run. */
interface OutputSource {
  name: string;
  /** index into run()'s result, or -1 when the output is a leaf */
  index: number;
  leaf: string | undefined;
  shape: number[];
}

interface Traced {
  program: NativeProgram;
  figures: ProgramFigures;
  outputs: OutputSource[];
}

export interface NodeFailure {
  /** index into plan.steps of the node whose kernel failed (-1: unknown) */
  step: number;
  error: unknown;
}

/** Traces `plan` into a new native program; throws Untraceable, or a NodeFailure for a kernel that refused. */
export async function tracePlan(plan: Plan, k: Kernels): Promise<Traced> {
  const P = k.Program;
  if (P === undefined) throw new Untraceable('the kernels have no native programs');
  const p = new P();
  const env = new Map<string, Tensor>();
  for (const l of plan.leaves) {
    const m = plan.metas.get(l)!;
    const shape = m.shape as number[];
    env.set(l, { dtype: m.dtype, shape, data: guardRef(p.input(m.dtype, numel(shape))) as unknown as TypedArray });
  }
  const tk = tracingKernels(p, Object.keys(k.async) as (keyof KernelFns)[]);
  for (let i = 0; i < plan.steps.length; i++) {
    const n = plan.steps[i]!.node;
    p.step(i);
    const ins = n.inputs.map((v) => env.get(v)!);
    let out: Tensor;
    try {
      out = await n.op.run(ins, n.attrs, tk);
    } catch (e) {
      if (e instanceof Untraceable) throw new Untraceable(`op ${n.op.name} ${e.message}`);
      if (e instanceof GradserveError) throw e;
      throw { step: i, error: e } satisfies NodeFailure;
    }
    if (!isRef(out.data)) throw new Untraceable(`op ${n.op.name} computes its output in JS`);
    const want = plan.metas.get(n.name)!;
    if (out.dtype !== want.dtype || !sameShape(out.shape, want.shape) || out.data.length !== numel(out.shape)) {
      throw { step: i, error: new Error(`traced output ${JSON.stringify(out.shape)} ${out.dtype}, the shape rule says ${JSON.stringify(want.shape)} ${want.dtype}`) } satisfies NodeFailure;
    }
    env.set(n.name, out);
  }
  const leafSlots = new Map<number, string>();
  for (const l of plan.leaves) leafSlots.set((env.get(l)!.data as unknown as SlotRef).slot, l);
  const slots: number[] = [];
  const outputs: OutputSource[] = plan.outputs.map((name) => {
    const t = env.get(name)!;
    const slot = (t.data as unknown as SlotRef).slot;
    const leaf = leafSlots.get(slot);
    slots.push(slot);
    return { name, index: slots.length - 1, leaf, shape: [...t.shape] };
  });
  const figures = p.finish(slots);
  return { program: p, figures, outputs };
}

/** Idle instances kept per plan for concurrent runs. */
const MAX_IDLE = 4;

interface ProgramSet {
  traced: Traced | undefined;
  idle: NativeProgram[];
  /** why the plan cannot be traced (it then runs node by node) */
  untraceable?: string;
}

const sets = new WeakMap<Plan, ProgramSet>();

function disabled(): boolean {
  return process.env.GRADSERVE_PROGRAMS === '0';
}

/** Why a plan runs node by node, or undefined when it runs as a native program (tests, diagnostics). */
export async function programStatus(plan: Plan, k: Kernels): Promise<string | undefined> {
  const s = await programSet(plan, k);
  return s.untraceable;
}

async function programSet(plan: Plan, k: Kernels): Promise<ProgramSet> {
  let s = sets.get(plan);
  if (s !== undefined) return s;
  s = { traced: undefined, idle: [] };
  if (disabled()) s.untraceable = 'GRADSERVE_PROGRAMS=0';
  else {
    try {
      s.traced = await tracePlan(plan, k);
      s.idle.push(s.traced.program);
    } catch (e) {
      // A kernel that refuses its arguments while tracing fails the same way node by node: report it from there.
      s.untraceable = e instanceof Untraceable ? e.message : 'tracing failed';
      if (!(e instanceof Untraceable)) return s;
    }
  }
  sets.set(plan, s);
  return s;
}

export interface ProgramRunHooks {
  /** maps a failed node (index into plan.steps) to the catalogue error */
  nodeError(step: number, e: unknown): GradserveError;
  abortError(signal: AbortSignal): GradserveError;
}

/**
 * Whether a program goes to the thread pool: from ASYNC_THRESHOLD elements of work, unless it is both under
 * INLINE_PROGRAM_WORK elements and INLINE_PROGRAM_FLOPS estimated flops (then its run is shorter than the hops).
 */
export function runsPooled(work: number, flops: number): boolean {
  if (work < ASYNC_THRESHOLD) return false;
  return work >= INLINE_PROGRAM_WORK || flops >= INLINE_PROGRAM_FLOPS;
}

/**
 * Runs `plan` as one native program. Resolves undefined when the plan cannot be traced (the caller runs it node by
 * node). Small programs run inline, larger ones on the thread pool (runsPooled; inline too with `opts.inline`).
 */
export async function runProgram(
  plan: Plan,
  inputs: Record<string, Tensor>,
  k: Kernels,
  hooks: ProgramRunHooks,
  opts?: RunOptions,
): Promise<Map<string, Tensor> | undefined> {
  const set = sets.get(plan) ?? (await programSet(plan, k));
  if (set.untraceable !== undefined || set.traced === undefined) return undefined;
  const traced = set.traced;
  // Concurrent runs of one plan each need an instance; a new one is traced when none is idle.
  const program = set.idle.pop() ?? (await tracePlan(plan, k)).program;
  const leaves: Tensor[] = plan.leaves.map((l) => inputs[l] ?? plan.compiled.constants.get(l)!);
  const signal = opts?.signal;
  if (signal?.aborted) {
    release(set, program);
    throw hooks.abortError(signal);
  }
  const cancel = signal !== undefined ? new Int32Array(1) : null;
  const onAbort = (): void => {
    cancel![0] = 1;
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let outs: (TypedArray | null)[];
  try {
    const arrays = leaves.map((t) => t.data);
    const given = opts?.allocResult !== undefined ? resultArrays(plan, traced, opts.allocResult) : undefined;
    const pooled = opts?.inline !== true && runsPooled(traced.figures.work, plan.cost.flops);
    outs = pooled ? await program.runAsync(arrays, cancel, given) : program.run(arrays, cancel, given);
  } catch (e) {
    if ((e as { code?: unknown })?.code === 'CANCELLED' && signal !== undefined) throw hooks.abortError(signal);
    const step = (e as { node?: unknown })?.node;
    throw hooks.nodeError(typeof step === 'number' ? step : -1, e);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    release(set, program);
  }
  if (signal?.aborted) throw hooks.abortError(signal);
  const result = new Map<string, Tensor>();
  for (const o of traced.outputs) {
    const meta = plan.metas.get(o.name)!;
    const data = o.leaf !== undefined ? (inputs[o.leaf] ?? plan.compiled.constants.get(o.leaf)!).data : outs[o.index]!;
    result.set(o.name, { dtype: meta.dtype, shape: o.shape, data });
  }
  const f = traced.figures;
  const stats: ExecStats = { nodes: plan.steps.length, flops: plan.cost.flops, bytes: f.bytes, peakBytes: f.peakBytes };
  opts?.onExecuted?.(stats);
  return result;
}

/** Results at least this large are written into memory from `allocResult` (smaller ones are cheap to allocate). */
const RESULT_ALLOC_BYTES = 64 * 1024;

/** The run's output arrays over memory from `alloc`, by output index (null: the run allocates). */
function resultArrays(plan: Plan, traced: Traced, alloc: (bytes: number) => ArrayBuffer | undefined): (TypedArray | null)[] | undefined {
  let given: (TypedArray | null)[] | undefined;
  for (const o of traced.outputs) {
    if (o.leaf !== undefined) continue;
    const dtype = plan.metas.get(o.name)!.dtype;
    const n = numel(o.shape);
    const bytes = n * BYTES_PER_ELEMENT[dtype];
    if (bytes < RESULT_ALLOC_BYTES || given?.[o.index] != null) continue;
    const ab = alloc(bytes);
    if (ab === undefined) continue;
    given ??= new Array<TypedArray | null>(traced.outputs.length).fill(null);
    given[o.index] = arrayOver(dtype, ab, n);
  }
  return given;
}

function release(set: ProgramSet, p: NativeProgram): void {
  if (set.idle.length < MAX_IDLE) set.idle.push(p);
}
