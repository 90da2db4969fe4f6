/**
 * Native memory between requests: the pool of program intermediates is capped at `poolBytes` (and so, separately,
 * are the recycled request and result buffers), and after `idleTrimMs` with nothing in flight both pools' buffers and
 * the allocator's free heap pages are returned to the system,
 * so RSS falls back near its warm level after a burst instead of staying at its peak.
 */
import type { FastifyInstance } from 'fastify';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadKernels } from '../engine/executor.js';
import type { Kernels } from '../kernels.types.js';
import type { BufferRecycler } from './recycle.js';

export interface MemoryOptions {
  poolBytes: number;
  idleTrimMs: number;
  /** Recycled request and result buffers (src/server/recycle.ts): dropped with the pool when idle. */
  recycler?: BufferRecycler;
}

/** Dropping at least this many bytes of recycled buffers is worth a full collection at idle time. */
const COLLECT_AFTER_BYTES = 16 * 1024 * 1024;

let gcFn: (() => void) | null | undefined;

/** A full collection now (the process is idle); a no-op where the runtime does not allow it. */
function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

export function installMemoryTrim(app: FastifyInstance, opts: MemoryOptions): void {
  let kernels: Kernels | undefined;
  let inFlight = 0;
  let lastActivity = Date.now();
  let dirty = false; // work happened since the last trim
  app.addHook('onRequest', (_req, _reply, done) => {
    inFlight++;
    dirty = true;
    done();
  });
  app.addHook('onResponse', (_req, _reply, done) => {
    inFlight--;
    lastActivity = Date.now();
    done();
  });
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    kernels = await loadKernels();
    kernels.setPoolCap?.(opts.poolBytes);
    if (opts.idleTrimMs <= 0) return;
    timer = setInterval(() => {
      if (!dirty || inFlight > 0 || Date.now() - lastActivity < opts.idleTrimMs) return;
      dirty = false;
      // Dropped buffers are only freed when V8 collects them, which an idle process may not do for a long while.
      if ((opts.recycler?.trim() ?? 0) >= COLLECT_AFTER_BYTES) collectGarbage();
      kernels?.trimPool?.();
    }, Math.max(50, Math.floor(opts.idleTrimMs / 2)));
    timer.unref();
  });
  app.addHook('onClose', async () => {
    if (timer !== undefined) clearInterval(timer);
  });
}
