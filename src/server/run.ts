/**
 * Runs one engine call for one HTTP request: the per-request limits, the server-wide admission hook, the request
 * timeout and client-disconnect cancellation. The HTTP answer never waits for an engine that ignores its signal:
 * the call is raced against the abort, while the memory reservation is held until the engine really settles.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RunOptions } from '../engine.types.js';
import { GradserveError } from '../errors.js';
import type { MemoryAdmission } from './admission.js';
import type { ServerConfig } from './config.js';
import type { Metrics } from './metrics.js';
import { onShutdownCancel } from './drain.js';
import { addEngineTime, phase } from './observe.js';
import { checkResponseSize } from './response_size.js';
import { leaseOf, type BufferRecycler } from './recycle.js';
import type { ResponseEncoding } from './tensors.js';

export interface RunDeps {
  config: ServerConfig;
  admission: MemoryAdmission;
  metrics: Metrics;
  /** Large request and result buffers reused across requests (routes that lease them: see recycle.ts). */
  recycler?: BufferRecycler;
}

/**
 * `answer` says how the response writes each tensor the engine returns (by the name the plan gives it), or undefined
 * when the response leaves it out: the answer's size is checked against the response limits before admission.
 */
export async function runWithLimits<T>(
  req: FastifyRequest,
  reply: FastifyReply,
  deps: RunDeps,
  call: (opts: RunOptions) => Promise<T>,
  answer?: (name: string) => ResponseEncoding | undefined,
): Promise<T> {
  const { config, admission, metrics } = deps;
  const controller = new AbortController();
  const signal = controller.signal;
  const timer = setTimeout(() => {
    controller.abort(new GradserveError('DEADLINE_EXCEEDED', `the request ran past its time limit of ${config.requestTimeoutMs} ms and was cancelled (GRADSERVE_REQUEST_TIMEOUT_MS)`));
  }, config.requestTimeoutMs);
  const onClose = (): void => {
    if (!reply.raw.writableFinished) controller.abort(new GradserveError('CANCELLED', 'the client closed the connection'));
  };
  reply.raw.on('close', onClose);
  // A shutdown past its grace period cancels the run with a 503 (src/server/drain.ts).
  const forgetShutdown = onShutdownCancel(req, (e) => controller.abort(e));

  let release: (() => void) | undefined;
  let settled = false;
  // The request's recycled buffers (its body, the results written below) stay out of reuse until the engine settles.
  const lease = leaseOf(req);
  const unpin = lease?.pin();
  const started = performance.now();
  phase(req, 'plan');
  const opts: RunOptions = {
    signal,
    memoryBudgetBytes: config.requestMemoryBytes,
    maxTensorElements: config.maxTensorElements,
    maxNodes: config.maxNodes,
    onPlan: async (cost) => {
      if (answer !== undefined) checkResponseSize(cost.outputs, answer, config);
      const r = await admission.acquire(cost.peakBytes, signal);
      phase(req, 'run');
      // The engine may have given up already (it raced the abort); never leak the reservation.
      if (settled) r();
      else release = r;
    },
    onExecuted: (stats) => metrics.recordExec(stats),
    ...(lease !== undefined ? { allocResult: (bytes: number) => lease.alloc(bytes) } : {}),
  };

  // One promise settled by whichever comes first, the engine or the abort (no Promise.race and its extra promises:
  // this runs on every request).
  const work = (async () => call(opts))();
  const settle = (): void => {
    settled = true;
    release?.();
    unpin?.();
    addEngineTime(req, performance.now() - started);
    phase(req, 'encode');
  };
  work.then(settle, settle);
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<T>((resolve, reject) => {
      onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject);
    });
  } finally {
    clearTimeout(timer);
    forgetShutdown();
    reply.raw.off('close', onClose);
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
