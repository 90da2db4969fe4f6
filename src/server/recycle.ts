/**
 * Large request and result buffers reused across requests. A fresh ArrayBuffer of tens of megabytes costs twice: its
 * pages fault in on first write (the kernel zeroes each one), and V8 counts it as external memory, so a server
 * allocating ~130 MB per request (the seed-scale VJP: 66 MB in, 65 MB out) ran several full mark-compact collections
 * per request, each holding the event loop. Buffers given back here after a response is sent are handed to the next
 * request of a similar size instead: no page faults, no new external memory, no collection.
 *
 * A request's buffers come back only when both its response has been written ('finish') and its engine call has
 * settled (a request answered early, by a timeout or a shutdown, may still have a kernel writing into them). A request
 * whose connection closes before the response is written gives nothing back: its buffers are left to the collector,
 * since a socket write may still reference them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Smaller buffers are left to V8 (cheap to allocate; not worth a size class). */
export const RECYCLE_MIN_BYTES = 64 * 1024;

/** Size classes: 8 per power of two, so a buffer serves requests up to 12.5% smaller than it. */
export function sizeClass(bytes: number): number {
  if (bytes <= RECYCLE_MIN_BYTES) return RECYCLE_MIN_BYTES;
  const step = 2 ** (Math.ceil(Math.log2(bytes)) - 4);
  return Math.ceil(bytes / step) * step;
}

export interface RecyclerStats {
  cachedBytes: number;
  hits: number;
  misses: number;
}

/** Free buffers by size class, at most `capBytes` of them. */
export class BufferRecycler {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private cached = 0;
  private hits = 0;
  private misses = 0;

  constructor(private cap: number) {}

  /** The most bytes kept for reuse (also the most one request may hold leased: see Lease). */
  get capBytes(): number {
    return this.cap;
  }

  /** A buffer of at least `bytes` (its size class); undefined when the allocation fails. */
  take(bytes: number): ArrayBuffer | undefined {
    const cls = sizeClass(bytes);
    const list = this.free.get(cls);
    const ab = list?.pop();
    if (ab !== undefined) {
      this.cached -= cls;
      this.hits++;
      return ab;
    }
    this.misses++;
    try {
      // Uninitialized: `new ArrayBuffer` zero-fills, and with the addon's malloc settings (large blocks from the heap,
      // not fresh mmap pages) that was a memset of the whole size on the event loop, ~18 ms for a 69 MB body, twice
      // per seed-scale request that missed the pool. Every user of these buffers writes what it reads (a body up to its
      // Content-Length, a result in full), and a recycled buffer holds an earlier request's bytes anyway.
      return Buffer.allocUnsafeSlow(cls).buffer as ArrayBuffer;
    } catch {
      return undefined; // out of memory: the caller allocates (and fails) its usual way
    }
  }

  /** Keeps `ab` for reuse if there is room (a detached or foreign-sized buffer is dropped). */
  give(ab: ArrayBuffer): void {
    const cls = ab.byteLength;
    if (cls === 0 || cls !== sizeClass(cls) || this.cached + cls > this.cap) return;
    let list = this.free.get(cls);
    if (list === undefined) this.free.set(cls, (list = []));
    list.push(ab);
    this.cached += cls;
  }

  /** Drops every cached buffer (they go to the collector); returns their bytes. */
  trim(): number {
    const dropped = this.cached;
    this.free.clear();
    this.cached = 0;
    return dropped;
  }

  setCap(bytes: number): void {
    this.cap = bytes;
    if (this.cached > bytes) this.trim();
  }

  stats(): RecyclerStats {
    return { cachedBytes: this.cached, hits: this.hits, misses: this.misses };
  }
}

/** One request's recycled buffers: given back once the response is written and every engine call has settled. */
export class Lease {
  private readonly held: ArrayBuffer[] = [];
  private heldBytes = 0;
  private pins = 1; // the response
  private abandoned = false;

  /**
   * `maxBytes`: most bytes one request holds in leased buffers. Everything leased stays out of reuse until the answer
   * is written, so a request that runs many programs (gradcheck's evaluations, a loop of batched passes) would
   * otherwise pin every intermediate result it ever made; past the cap, results are ordinary collectable memory.
   */
  constructor(private readonly recycler: BufferRecycler, private readonly maxBytes = Infinity) {}

  /** A buffer of at least `bytes` for this request, or undefined (small sizes, over the cap, or no memory). */
  alloc(bytes: number): ArrayBuffer | undefined {
    if (this.abandoned || bytes < RECYCLE_MIN_BYTES || this.heldBytes + sizeClass(bytes) > this.maxBytes) return undefined;
    const ab = this.recycler.take(bytes);
    if (ab !== undefined) {
      this.held.push(ab);
      this.heldBytes += ab.byteLength;
    }
    return ab;
  }

  /** Holds the buffers while an engine call runs; call the result once it has settled. */
  pin(): () => void {
    this.pins++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.unpin();
    };
  }

  /** The response was written. */
  responded(): void {
    this.unpin();
  }

  /** The connection went away before the response was written: nothing comes back. */
  abandon(): void {
    this.abandoned = true;
    this.held.length = 0;
    this.heldBytes = 0;
  }

  private unpin(): void {
    if (--this.pins > 0 || this.abandoned) return;
    for (const ab of this.held) this.recycler.give(ab);
    this.held.length = 0;
    this.heldBytes = 0;
  }
}

const LEASE = Symbol('gradserve.lease');
type WithLease = FastifyRequest & { [LEASE]?: Lease };

/** Gives `req` a lease that returns its buffers once `reply` is written (an onRequest hook calls this). */
export function attachLease(req: FastifyRequest, reply: FastifyReply, recycler: BufferRecycler): Lease {
  const lease = new Lease(recycler, recycler.capBytes);
  (req as WithLease)[LEASE] = lease;
  const raw = reply.raw;
  raw.once('finish', () => lease.responded());
  raw.once('close', () => {
    if (!raw.writableFinished) lease.abandon();
  });
  return lease;
}

/** The request's lease, if its route recycles buffers. */
export function leaseOf(req: FastifyRequest): Lease | undefined {
  return (req as WithLease)[LEASE];
}
