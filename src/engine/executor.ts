/**
 * Runs a plan on the native kernels: as one native program when the plan can be traced (program.ts; the normal
 * case), else node by node. Node by node, each node's op gets an OpKernels facade that sends big work (>= ASYNC_THRESHOLD
 * elements) to the libuv thread pool and runs small work synchronously, so the event loop stays responsive without
 * paying the thread hop on tiny tensors. Intermediates are dropped at their last use; cancellation is checked between
 * nodes; native error codes become catalogue errors naming the node and op.
 */
import { GradserveError, fmtShape } from '../errors.js';
import type { ExecStats, RunOptions } from '../engine.types.js';
import { ASYNC_THRESHOLD, type KernelFns, type Kernels } from '../kernels.types.js';
import type { OpKernels } from '../ops/types.js';
import type { TypedArray } from '../tensor/dtype.js';
import { sameShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Plan } from '../graph/plan.js';
import { runProgram, type ProgramRunHooks } from './program.js';

let loaded: Kernels | undefined;
let facade: OpKernels | undefined;
let inlineFacade: OpKernels | undefined;

/** Loads the addon on first use, so graph validation and transforms work without it. */
export async function loadKernels(): Promise<Kernels> {
  if (loaded === undefined) {
    const mod = await import('../kernels.js');
    loaded = mod.kernels;
  }
  return loaded;
}

function workOf(args: unknown[]): number {
  let n = 0;
  for (const a of args) {
    if (ArrayBuffer.isView(a)) n += (a as TypedArray).length;
    else if (Array.isArray(a)) for (const b of a) if (ArrayBuffer.isView(b)) n += (b as TypedArray).length;
  }
  return n;
}

/** The kernels as an op sees them: big work on the thread pool, unless `inline` (every call on the calling thread). */
export function makeOpKernels(k: Kernels, inline = false): OpKernels {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of Object.keys(k.async) as (keyof KernelFns)[]) {
    const syncFn = (k[name] as (...a: unknown[]) => unknown).bind(k);
    const asyncFn = k.async[name] as (...a: unknown[]) => Promise<unknown>;
    out[name] = (...args: unknown[]) => {
      if (!inline && workOf(args) >= ASYNC_THRESHOLD) return asyncFn(...args);
      try {
        return Promise.resolve(syncFn(...args));
      } catch (e) {
        return Promise.reject(e);
      }
    };
  }
  return out as unknown as OpKernels;
}

async function opKernels(inline: boolean): Promise<OpKernels> {
  if (inline) return (inlineFacade ??= makeOpKernels(await loadKernels(), true));
  return (facade ??= makeOpKernels(await loadKernels()));
}

/** Tests and embedders may supply another Kernels implementation. */
export function setKernels(k: Kernels): void {
  loaded = k;
  facade = makeOpKernels(k);
  inlineFacade = makeOpKernels(k, true);
}

export function abortError(signal: AbortSignal): GradserveError {
  const r: unknown = signal.reason;
  if (r instanceof GradserveError) return r;
  if (r instanceof Error && r.name === 'TimeoutError') return new GradserveError('DEADLINE_EXCEEDED', 'the request ran past its time limit and was cancelled');
  return new GradserveError('CANCELLED', 'the request was cancelled');
}

function nativeError(e: unknown, node: string, op: string, path: string, ins: readonly { shape: readonly (number | null)[]; dtype: string }[]): GradserveError {
  if (e instanceof GradserveError) return e;
  const code = (e as { code?: unknown })?.code;
  const msg = e instanceof Error ? e.message : String(e);
  if (code === 'INDEX_OUT_OF_RANGE' || code === 'INVALID_CAST' || code === 'SINGULAR_MATRIX' || code === 'NOT_POSITIVE_DEFINITE' || code === 'NO_CONVERGENCE') {
    const detail = `node "${node}" (${op}): ${msg}`;
    return new GradserveError(code, detail, { errors: [{ path, message: detail }], cause: e });
  }
  if (code === 'UNSUPPORTED') {
    const detail = `node "${node}" (${op}): ${msg}`;
    return new GradserveError('NOT_IMPLEMENTED', detail, { errors: [{ path, message: detail }], cause: e });
  }
  const shapes = ins.map((t) => `${fmtShape(t.shape as number[])} ${t.dtype}`).join(', ');
  return new GradserveError('INTERNAL', `node "${node}" (${op}) failed on ${shapes}: ${msg}`, { cause: e });
}

const programHooks = (plan: Plan): ProgramRunHooks => ({
  abortError,
  nodeError(step, e) {
    const n = plan.steps[step]?.node;
    if (n === undefined) return nativeError(e, '?', '?', '', []);
    return nativeError(e, n.name, n.op.name, n.path, n.inputs.map((i) => plan.metas.get(i)!));
  },
});

/** Executes `plan` with the given input tensors; returns the requested outputs. */
export async function execute(plan: Plan, inputs: Record<string, Tensor>, opts?: RunOptions): Promise<Map<string, Tensor>> {
  const r = await runProgram(plan, inputs, loaded ?? (await loadKernels()), programHooks(plan), opts);
  return r ?? executeNodes(plan, inputs, opts);
}

/** Node by node: each op's run on the kernel facade (the reference path, and the one for untraceable plans). */
export async function executeNodes(plan: Plan, inputs: Record<string, Tensor>, opts?: RunOptions): Promise<Map<string, Tensor>> {
  const k = await opKernels(opts?.inline === true);
  const env = new Map<string, Tensor>();
  // live bytes counted per distinct buffer, since aliasing ops (reshape, identity) share their input's
  const holders = new Map<ArrayBufferLike, number>();
  let live = 0;
  let peak = 0;
  const hold = (t: Tensor): void => {
    const b = t.data.buffer;
    const n = holders.get(b) ?? 0;
    if (n === 0) live += b.byteLength;
    holders.set(b, n + 1);
  };
  const release = (t: Tensor): void => {
    const b = t.data.buffer;
    const n = (holders.get(b) ?? 1) - 1;
    if (n === 0) {
      holders.delete(b);
      live -= b.byteLength;
    } else holders.set(b, n);
  };
  for (const l of plan.leaves) {
    const t = inputs[l] ?? plan.compiled.constants.get(l)!;
    env.set(l, t);
    hold(t);
  }
  peak = live;
  const signal = opts?.signal;
  let bytes = 0;
  for (const step of plan.steps) {
    if (signal?.aborted) throw abortError(signal);
    const n = step.node;
    const ins = n.inputs.map((i) => env.get(i)!);
    let out: Tensor;
    try {
      out = await n.op.run(ins, n.attrs, k);
    } catch (e) {
      throw nativeError(e, n.name, n.op.name, n.path, ins);
    }
    const want = plan.metas.get(n.name)!;
    if (out.dtype !== want.dtype || !sameShape(out.shape, want.shape) || out.data.length !== out.shape.reduce((a, b) => a * b, 1)) {
      throw new GradserveError('INTERNAL', `node "${n.name}" (${n.op.name}) produced ${fmtShape(out.shape)} ${out.dtype}, its shape rule says ${fmtShape(want.shape as number[])} ${want.dtype}`);
    }
    bytes += out.data.byteLength;
    env.set(n.name, out);
    hold(out);
    if (live > peak) peak = live;
    for (const f of step.free) {
      release(env.get(f)!);
      env.delete(f);
    }
  }
  if (signal?.aborted) throw abortError(signal);
  const result = new Map<string, Tensor>();
  for (const o of plan.outputs) result.set(o, env.get(o)!);
  const stats: ExecStats = { nodes: plan.steps.length, flops: plan.cost.flops, bytes, peakBytes: peak };
  opts?.onExecuted?.(stats);
  return result;
}
