/** Server-wide memory admission: FIFO grants, bounded waits, aborts, requests that can never fit. */
import { describe, expect, it } from 'vitest';
import { GradserveError } from '../../src/errors.js';
import { MemoryAdmission } from '../../src/server/admission.js';

describe('MemoryAdmission', () => {
  it('grants in arrival order as memory is released', async () => {
    const a = new MemoryAdmission(100, 10_000);
    const r1 = await a.acquire(60);
    const order: string[] = [];
    const p2 = a.acquire(50).then((r) => { order.push('big'); return r; });
    const p3 = a.acquire(10).then((r) => { order.push('small'); return r; });
    await new Promise((r) => setTimeout(r, 10));
    // The small one would fit now, but waits behind the big one so that large requests are not starved.
    expect(order).toEqual([]);
    expect(a.queued).toBe(2);
    r1();
    const [r2, r3] = await Promise.all([p2, p3]);
    expect(order).toEqual(['big', 'small']);
    expect(a.usedBytes).toBe(60);
    r2();
    r3();
    r3(); // releasing twice is harmless
    expect(a.usedBytes).toBe(0);
  });

  it('gives up after the wait with OVERLOADED and Retry-After', async () => {
    const a = new MemoryAdmission(100, 30);
    const r1 = await a.acquire(100);
    const err = await a.acquire(1).catch((e: unknown) => e);
    expect((err as GradserveError).code).toBe('OVERLOADED');
    expect((err as GradserveError).headers).toEqual({ 'Retry-After': '1' });
    expect(a.queued).toBe(0);
    r1();
    expect(a.usedBytes).toBe(0);
  });

  it('leaves the queue when the request is aborted', async () => {
    const a = new MemoryAdmission(100, 10_000);
    const r1 = await a.acquire(100);
    const ac = new AbortController();
    const p = a.acquire(50, ac.signal).catch((e: unknown) => e);
    ac.abort(new GradserveError('CANCELLED', 'gone'));
    expect(((await p) as GradserveError).code).toBe('CANCELLED');
    expect(a.queued).toBe(0);
    r1();
  });

  it('refuses a request larger than the whole budget at once with TOO_LARGE', async () => {
    const a = new MemoryAdmission(1024, 10_000);
    const err = await a.acquire(4096).catch((e: unknown) => e);
    expect((err as GradserveError).code).toBe('TOO_LARGE');
    expect((err as GradserveError).detail).toMatch(/4 KiB.*1 KiB/);
  });
});
