/**
 * Server-wide memory admission control: a request reserves its estimated peak bytes before it executes and returns
 * them when the engine settles. Requests that do not fit wait (FIFO, so large requests are not starved) for a bounded
 * time, then get 503 OVERLOADED with Retry-After.
 */
import { GradserveError, fmtBytes } from '../errors.js';

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class MemoryAdmission {
  private used = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly budgetBytes: number,
    private readonly waitMs: number,
    private readonly onChange: (usedBytes: number, queued: number) => void = () => {},
  ) {}

  get usedBytes(): number {
    return this.used;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once `bytes` fit; rejects with OVERLOADED after the wait, or the abort reason. */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const need = Math.max(0, Math.ceil(bytes));
    if (need > this.budgetBytes) {
      return Promise.reject(new GradserveError('TOO_LARGE', `the request needs an estimated ${fmtBytes(need)} at its peak, over the server-wide memory budget of ${fmtBytes(this.budgetBytes)} (GRADSERVE_SERVER_MEMORY)`));
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.used -= need;
      this.pump();
      this.changed();
    };
    if (this.waiters.length === 0 && this.used + need <= this.budgetBytes) {
      this.used += need;
      this.changed();
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: need,
        grant: () => {
          cleanup();
          this.used += need;
          resolve(release);
        },
      };
      const drop = (err: unknown): void => {
        cleanup();
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.pump();
        this.changed();
        reject(err);
      };
      const timer = setTimeout(() => {
        const retry = String(Math.max(1, Math.ceil(this.waitMs / 1000)));
        drop(new GradserveError('OVERLOADED', `the server-wide memory budget of ${fmtBytes(this.budgetBytes)} is taken (${fmtBytes(this.used)} in use, this request needs ${fmtBytes(need)}); retry later`, { headers: { 'Retry-After': retry } }));
      }, this.waitMs);
      const onAbort = (): void => drop(signal!.reason);
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      if (signal?.aborted) {
        cleanup();
        reject(signal.reason);
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.changed();
    });
  }

  private pump(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      if (this.used + w.bytes > this.budgetBytes) return;
      this.waiters.shift();
      w.grant();
    }
  }

  private changed(): void {
    this.onChange(this.used, this.waiters.length);
  }
}
