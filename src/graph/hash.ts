/**
 * Graph hashing and the bounded LRU behind the plan and derivative caches. The hash is over a canonical JSON form
 * (object keys sorted) so two requests that spell the same graph with keys in another order share a plan.
 */
import { createHash } from 'node:crypto';
import type { Tensor } from '../tensor/tensor.js';

// One string built by concatenation (V8 ropes) rather than an array of fragments: every request hashes its graph, and
// this form costs a third of the fragment list on small graphs. The text is byte-for-byte the same as before.
function canonical(v: unknown): string {
  // a BigInt (which JSON cannot write) from a library caller's graph gets a form of its own, so hashing does not throw
  // and validation can refuse it with a message naming the attribute
  if (typeof v === 'bigint') return `${v}n`;
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) s += ',';
      s += canonical(v[i]);
    }
    return `${s}]`;
  }
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let s = '{';
  let first = true;
  for (const k of keys) {
    const x = obj[k];
    if (x === undefined) continue;
    if (!first) s += ',';
    first = false;
    s += `${JSON.stringify(k)}:${canonical(x)}`;
  }
  return `${s}}`;
}

export function stableStringify(v: unknown): string {
  return canonical(v);
}

/**
 * Graphs whose canonical text is at most this long are keyed by the text itself: a Map hashes a short string in far
 * less time than a sha256 digest takes to set up, and every call of the engine keys its graph.
 */
const TEXT_KEY_CHARS = 4096;

/** The cache key of a graph: its canonical text (`=` first) when short, else the sha256 of that text (64 hex digits). */
export function hashGraph(graph: unknown): string {
  const text = stableStringify(graph);
  return text.length <= TEXT_KEY_CHARS ? `=${text}` : createHash('sha256').update(text).digest('hex');
}

/** Shapes and datatypes of the given tensors, in a fixed order: the per-call part of a cache key. */
export function tensorsSignature(tensors: Record<string, Pick<Tensor, 'dtype' | 'shape'>>): string {
  return Object.keys(tensors)
    .sort()
    .map((k) => {
      // never throws: malformed entries are reported by the input checks that follow a cache miss
      const t = tensors[k] as Partial<Tensor> | undefined;
      return `${JSON.stringify(k)}:${String(t?.dtype)}[${Array.isArray(t?.shape) ? t.shape.join(',') : '?'}]`;
    })
    .join(';');
}

/**
 * A Map kept in recency order: get() refreshes an entry, set() evicts the oldest beyond `capacity` entries or beyond
 * `maxWeight` (e.g. bytes of decoded constants, so a few graphs with large weights cannot pin unbounded memory).
 */
export class LruCache<V> {
  private readonly map = new Map<string, V>();
  private readonly weights = new Map<string, number>();
  private weight = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number, readonly maxWeight = Infinity, private readonly weigh: (v: V) => number = () => 0) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: string, value: V): void {
    this.delete(key);
    const w = this.weigh(value);
    this.map.set(key, value);
    this.weights.set(key, w);
    this.weight += w;
    // the newest entry always stays, even when it alone is over the weight limit
    while (this.map.size > 1 && (this.map.size > this.capacity || this.weight > this.maxWeight)) {
      this.delete(this.map.keys().next().value as string);
    }
  }

  private delete(key: string): void {
    if (!this.map.has(key)) return;
    this.map.delete(key);
    this.weight -= this.weights.get(key) ?? 0;
    this.weights.delete(key);
  }

  get size(): number {
    return this.map.size;
  }

  /** Sum of the entries' weights (what `maxWeight` bounds). */
  get totalWeight(): number {
    return this.weight;
  }

  clear(): void {
    this.map.clear();
    this.weights.clear();
    this.weight = 0;
    this.hits = 0;
    this.misses = 0;
  }
}
