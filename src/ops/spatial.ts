/**
 * Window geometry and attributes of the spatial ops (channels first: (N, C, *spatial) with 1 to 3 spatial axes). The
 * geometry (a dilated kernel's extent, how many positions a window takes along an axis) is shared by the convolutions
 * (src/ops/conv.ts) and pooling (src/ops/pool.ts). The attribute helpers are the convolutions': per-axis `strides`,
 * `dilations` and `pads` as zod schemas, and their validation against the number of spatial axes. A per-axis attr is
 * a list with one entry per spatial axis, or a single int that stands for every axis (PyTorch's `stride=2`); `pads`
 * is `[[before, after], ...]` as `pad` takes it, or a single int for every side. A flat list of ints is refused for
 * `pads`: it would read one way as PyTorch's per-axis symmetric padding and another as ONNX's begins-then-ends.
 */
import { z } from 'zod';
import type { InferContext } from './types.js';
import { attrAt, failNode, intSchema } from './common.js';

/** Largest stride, dilation, pad or output padding (the kernels' int arithmetic stays exact far beyond it). */
export const MAX_SPATIAL_ATTR = 2 ** 31 - 1;

export type PerAxis = number | number[];
export type PadsAttr = number | [number, number][];

export function perAxisSchema(dflt: number, what: string) {
  return z.union([intSchema, z.array(intSchema)]).default(dflt)
    .describe(`${what}: one per spatial axis, or one int for every axis`);
}

export const padsSchema = z
  .union([intSchema, z.array(z.tuple([intSchema, intSchema]))], {
    error: 'must be one int for every side or [[before, after], ...], one pair per spatial axis (a flat list such as [1, 1, 1, 1] is refused: PyTorch and ONNX order it differently)',
  })
  .default(0)
  .describe('zero padding [[before, after], ...], one pair per spatial axis (>= 0), or one int for every side');

/** A per-axis attr as a list of `nd` entries (no checks: for run() and rules, after infer has checked it). */
export function perAxis(v: PerAxis, nd: number): number[] {
  return typeof v === 'number' ? new Array<number>(nd).fill(v) : [...v];
}

export function padPairs(v: PadsAttr, nd: number): [number, number][] {
  return typeof v === 'number' ? Array.from({ length: nd }, () => [v, v] as [number, number]) : v.map(([b, a]) => [b, a]);
}

/**
 * A per-axis attr checked against `nd` spatial axes and the range [min, MAX_SPATIAL_ATTR]: INVALID_ATTRS at the
 * attribute, naming the node and `shapes` (e.g. "x [1, 3, 8, 8], w [4, 3, 3, 3]").
 */
export function perAxisOrFail(v: PerAxis, nd: number, name: string, min: number, ctx: InferContext, shapes: string): number[] {
  const list = perAxis(v, nd);
  if (list.length !== nd) {
    failNode('INVALID_ATTRS', ctx, `${name} [${list.join(', ')}] has ${list.length} entries for ${nd} spatial axes (${shapes}); give one per spatial axis or one int`, attrAt(name));
  }
  const bad = list.findIndex((d) => d < min || d > MAX_SPATIAL_ATTR);
  if (bad >= 0) {
    failNode('INVALID_ATTRS', ctx, `${name} [${list.join(', ')}] must be >= ${min} (and at most ${MAX_SPATIAL_ATTR}); spatial axis ${bad} has ${list[bad]} (${shapes})`, attrAt(name));
  }
  return list;
}

export function padsOrFail(v: PadsAttr, nd: number, ctx: InferContext, shapes: string): [number, number][] {
  const pairs = padPairs(v, nd);
  const text = `[${pairs.map((p) => `[${p.join(', ')}]`).join(', ')}]`;
  if (pairs.length !== nd) {
    failNode('INVALID_ATTRS', ctx, `pads ${text} has ${pairs.length} pairs for ${nd} spatial axes (${shapes}); give one [before, after] per spatial axis or one int`, attrAt('pads'));
  }
  const bad = pairs.findIndex(([b, a]) => b < 0 || a < 0 || b > MAX_SPATIAL_ATTR || a > MAX_SPATIAL_ATTR);
  if (bad >= 0) {
    failNode('INVALID_ATTRS', ctx, `pads ${text} must be >= 0 (and at most ${MAX_SPATIAL_ATTR}); spatial axis ${bad} has [${pairs[bad]!.join(', ')}] (${shapes})`, attrAt('pads'));
  }
  return pairs;
}

/** Extent of a dilated kernel axis: dilation * (k - 1) + 1. */
export function kernelExtent(k: number, dilation: number): number {
  return dilation * (k - 1) + 1;
}

/**
 * How many positions a window (kernel k, stride s, dilation d) takes along an axis of length n padded by
 * [before, after]: floor((n + before + after - extent) / s) + 1, PyTorch's rule for convolutions and pooling; with
 * `ceil` rounded up instead, less a last window that would start in the right padding. Undefined when the dilated
 * kernel does not fit in the padded axis (no position at all).
 */
export function windowPositions(n: number, k: number, s: number, [before, after]: readonly [number, number], d: number, ceil = false): number | undefined {
  const span = n + before + after - kernelExtent(k, d);
  if (span < 0) return undefined;
  let out = Math.floor((ceil ? span + s - 1 : span) / s) + 1;
  if (ceil && (out - 1) * s >= n + before) out--;
  return out;
}
