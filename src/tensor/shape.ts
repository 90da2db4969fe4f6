/**
 * Shape helpers shared by every op. A symbolic dimension is `null` (unknown size: declared `null` in a graph input and
 * only seen by symbolic transforms); during execution every dimension is a number.
 */
import { fmtShape } from '../errors.js';

export type Dim = number | null;
export type SymShape = Dim[];

export function fmtSymShape(s: readonly Dim[] | null): string {
  if (s === null) return '[...]';
  return fmtShape(s.map((d) => (d === null ? 'None' : d)) as unknown as number[]);
}

/**
 * NumPy multidirectional broadcasting. Returns the broadcast shape, or undefined when the shapes are incompatible.
 * Unknown dims: null vs 1 -> null, null vs n -> n, null vs null -> null.
 */
export function broadcastShapes(...shapes: (readonly Dim[])[]): SymShape | undefined {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: SymShape = new Array(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const a = out[off + i] as Dim;
      const b = s[i] as Dim;
      if (b === 1) continue;
      if (a === 1) { out[off + i] = b; continue; }
      if (a === null) { out[off + i] = b; continue; }
      if (b === null) continue;
      if (a !== b) return undefined;
    }
  }
  return out;
}

/** Normalizes a possibly negative axis for a tensor of `rank`; undefined when out of range. */
export function normalizeAxis(axis: number, rank: number): number | undefined {
  if (!Number.isInteger(axis)) return undefined;
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}

/**
 * Normalizes `axes` (int, list or null = all) to a sorted unique list of non-negative axes; undefined when an axis is
 * out of range or repeated.
 */
export function normalizeAxes(axes: number | number[] | null | undefined, rank: number): number[] | undefined {
  if (axes === null || axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out: number[] = [];
  for (const a of list) {
    const n = normalizeAxis(a, rank);
    if (n === undefined || out.includes(n)) return undefined;
    out.push(n);
  }
  return out.sort((x, y) => x - y);
}

export function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function symNumel(s: readonly Dim[]): number | null {
  if (s.includes(0)) return 0;
  let n = 1;
  for (const d of s) {
    if (d === null) return null;
    n *= d;
  }
  return n;
}

/** 2^53 - 1: the largest dimension a shape may have (JSON numbers and element counts are exact up to here). */
export const MAX_DIM = Number.MAX_SAFE_INTEGER;

export function isConcrete(s: readonly Dim[]): s is number[] {
  return s.every((d) => d !== null);
}
