/**
 * Large JSON bodies are parsed by a small pool of worker threads (src/server/json_worker.ts), so that no request
 * holds the event loop while JSON.parse builds it: the body's blocks are transferred to a worker (not copied), the
 * worker refuses what cannot be represented (json_prescan.ts), parses with the same code as the event loop would,
 * decodes the tensor payloads into typed arrays and transfers those back with a small skeleton of the request
 * (json_tensors.ts); other long strings and arrays of numbers (graph constants) come back as bytes and are rebuilt a
 * slice at a time. Results and errors are those of parseJsonText.
 *
 * Workers start when first needed, do not keep the process alive, and are stopped when the app closes. A worker
 * that dies (out of memory, a bug) fails only the request it was parsing (413 when out of memory, else 500) and is
 * replaced by the next request; a parse running past the request time limit is stopped (504). A worker that parsed
 * a large body is replaced after it, and an idle one is stopped after a few seconds: either returns its heap to the
 * system.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { GradserveError, type ErrorCode, type ErrorItem } from '../errors.js';
import { otherValuesLimit } from './json_prescan.js';
import { attachTensors, restoreLarge, type Large, type Lifted } from './json_tensors.js';

export interface ParsePoolOptions {
  /** Worker threads (at least 1). */
  threads: number;
  /** Per-tensor element limit (GRADSERVE_MAX_TENSOR_ELEMENTS), enforced on JSON arrays before they are built. */
  maxTensorElements: number;
  /** GRADSERVE_MAX_NODES: bounds the values a body may have outside its tensors (json_prescan.ts). */
  maxNodes?: number | undefined;
  /** A parse running longer is stopped: 504 DEADLINE_EXCEEDED. */
  timeoutMs: number;
  /** V8 limits of each worker (tests use small heaps); V8's defaults otherwise. */
  resourceLimits?: ResourceLimits | undefined;
  /** A worker that parsed a body at least this large is replaced afterwards. */
  recycleBytes?: number | undefined;
  /** A worker idle this long is stopped (its heap, garbage of the last parses included, goes back to the system). */
  idleMs?: number | undefined;
  /** Share of a worker's heap limit one parsed body may take (json_prescan.ts estimates it); 0.5 by default. */
  heapShare?: number | undefined;
}

/** What the event loop sends a worker. */
export interface ParseRequest {
  id: number;
  blocks: Uint8Array[];
  length: number;
  maxTensorElements: number;
  maxOtherValues: number;
  heapShare: number;
}

/** What a worker answers. */
export type ParseReply =
  | { id: number; ok: true; value: unknown; lifted: Lifted[]; large: Large[] }
  | { id: number; ok: false; error: { code: ErrorCode; detail: string; errors?: ErrorItem[] | undefined } }
  | { id: number; ok: false; internal: string };

interface Job {
  id: number;
  blocks: Uint8Array[];
  length: number;
  cancelled: (() => boolean) | undefined;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
  idle: NodeJS.Timeout | undefined;
}

const RECYCLE_BYTES = 64 * 1024 * 1024;
const IDLE_MS = 5000;

/** The worker's entry: the compiled module, or, running from the TypeScript sources (tests), a compiling loader. */
function workerEntry(): { url: URL; workerData?: unknown } {
  const js = new URL('./json_worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { url: js };
  const ts = new URL('./json_worker.ts', import.meta.url);
  return { url: new URL('../../test/support/ts-worker.mjs', import.meta.url), workerData: { entry: ts.href } };
}

export class ParsePool {
  private readonly slots: (Slot | undefined)[];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  /** Workers started so far (tests watch restarts). */
  started = 0;

  constructor(private readonly opts: ParsePoolOptions) {
    this.slots = new Array<Slot | undefined>(Math.max(1, opts.threads)).fill(undefined);
  }

  /**
   * Parses a JSON body given as blocks (each owning its ArrayBuffer, which is transferred: the blocks are unusable
   * afterwards). `cancelled` is asked before the parse starts: a request whose client left is not parsed.
   */
  parse(blocks: Uint8Array[], length: number, cancelled?: () => boolean): Promise<unknown> {
    if (this.closed) return Promise.reject(new GradserveError('OVERLOADED', 'the server is shutting down'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, blocks, length, cancelled, resolve, reject });
      this.pump();
    });
  }

  /** Fails queued and running parses and stops the workers. */
  async close(): Promise<void> {
    this.closed = true;
    const shutdown = (): GradserveError => new GradserveError('OVERLOADED', 'the server is shutting down');
    for (const job of this.queue.splice(0)) job.reject(shutdown());
    const stopping: Promise<number>[] = [];
    this.slots.forEach((slot, i) => {
      if (slot === undefined) return;
      this.retire(i);
      slot.job?.reject(shutdown());
      stopping.push(slot.worker.terminate());
    });
    await Promise.allSettled(stopping);
  }

  /** Stops every worker as if it had crashed (tests). */
  async crashForTest(): Promise<void> {
    await Promise.allSettled(this.slots.map((s) => s?.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const i = this.slots.findIndex((s) => s === undefined || s.job === undefined);
      if (i < 0) return;
      const job = this.queue.shift()!;
      if (job.cancelled?.() === true) {
        job.reject(new GradserveError('CANCELLED', 'the client closed the connection'));
        continue;
      }
      this.run(i, job);
    }
  }

  private spawn(i: number): Slot {
    const entry = workerEntry();
    const worker = new Worker(entry.url, { workerData: entry.workerData, resourceLimits: this.opts.resourceLimits });
    this.started++;
    const slot: Slot = { worker, job: undefined, timer: undefined, idle: undefined };
    worker.on('message', (m: ParseReply) => this.answered(i, worker, m));
    worker.on('error', (e) => this.died(i, worker, e));
    worker.on('exit', (code) => this.died(i, worker, new Error(`the parse worker exited with code ${code}`)));
    worker.unref();
    this.slots[i] = slot;
    return slot;
  }

  private run(i: number, job: Job): void {
    const slot = this.slots[i] ?? this.spawn(i);
    clearTimeout(slot.idle);
    slot.job = job;
    // A running parse keeps the process alive (an idle worker does not).
    slot.worker.ref();
    slot.timer = setTimeout(() => {
      if (slot.job !== job) return;
      this.retire(i);
      void slot.worker.terminate();
      job.reject(new GradserveError('DEADLINE_EXCEEDED', `parsing the request body took longer than the time limit of ${this.opts.timeoutMs} ms (GRADSERVE_REQUEST_TIMEOUT_MS)`));
      this.pump();
    }, this.opts.timeoutMs);
    slot.timer.unref();
    const msg: ParseRequest = {
      id: job.id,
      blocks: job.blocks,
      length: job.length,
      maxTensorElements: this.opts.maxTensorElements,
      maxOtherValues: otherValuesLimit(this.opts.maxNodes ?? 10_000),
      heapShare: this.opts.heapShare ?? 0.5,
    };
    slot.worker.postMessage(msg, job.blocks.map((b) => b.buffer as ArrayBuffer));
    job.blocks = [];
  }

  /** Forgets slot i's worker (it is dead or being stopped); its job, if any, is the caller's to settle. */
  private retire(i: number): void {
    const slot = this.slots[i];
    if (slot === undefined) return;
    clearTimeout(slot.timer);
    clearTimeout(slot.idle);
    this.slots[i] = undefined;
  }

  private answered(i: number, worker: Worker, m: ParseReply): void {
    const slot = this.slots[i];
    if (slot === undefined || slot.worker !== worker || slot.job?.id !== m.id) return;
    const job = slot.job;
    clearTimeout(slot.timer);
    slot.job = undefined;
    slot.timer = undefined;
    worker.unref();
    if (job.length >= (this.opts.recycleBytes ?? RECYCLE_BYTES)) {
      this.retire(i);
      void worker.terminate();
    } else {
      slot.idle = setTimeout(() => {
        if (this.slots[i] !== slot || slot.job !== undefined) return;
        this.retire(i);
        void worker.terminate();
      }, this.opts.idleMs ?? IDLE_MS);
      slot.idle.unref();
    }
    if (m.ok) {
      try {
        attachTensors(m.value, m.lifted);
        restoreLarge(m.value, m.large).then(() => job.resolve(m.value), job.reject);
      } catch (e) {
        job.reject(e as Error);
      }
    } else if ('error' in m) {
      job.reject(new GradserveError(m.error.code, m.error.detail, m.error.errors === undefined ? {} : { errors: m.error.errors }));
    } else {
      job.reject(new Error(`the JSON parse worker failed: ${m.internal}`));
    }
    this.pump();
  }

  private died(i: number, worker: Worker, e: Error): void {
    const slot = this.slots[i];
    if (slot === undefined || slot.worker !== worker) return;
    this.retire(i);
    const job = slot.job;
    if (job !== undefined) {
      if ((e as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY') {
        job.reject(new GradserveError('TOO_LARGE', 'parsing the request body ran out of memory; send large tensors as b64 or binary', { errors: [{ path: '(body)', message: 'out of memory while parsing' }] }));
      } else {
        job.reject(new GradserveError('INTERNAL', 'the JSON parse worker stopped while parsing this request; see the server log', { cause: e }));
      }
    }
    void worker.terminate();
    this.pump();
  }
}
