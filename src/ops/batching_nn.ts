/**
 * Batching rules (OpDef.vmap) of the convolution, pooling and normalization ops. Channels-first ops fold the batch axis
 * K into their leading N axis (per-sample windows and statistics do not mix samples); batch_norm with batch statistics
 * folds it into the channels instead, since its statistics run over N. Batched parameters (scale, bias, statistics)
 * are applied as broadcasting ops after normalizing with unit ones. A convolution whose weights are batched becomes one
 * convolution with K times the groups.
 */
import type { BatchedValue, Batcher, VmapArgs } from './types.js';

type Rule = (args: VmapArgs) => boolean;

/** Every (N, ...) operand as (K * N, ...), `op` on those (and `rest`), the result as (K, N, ...); `final` names it. */
function foldIntoN(b: Batcher, op: string, attrs: Record<string, unknown>, operands: readonly BatchedValue[], rest: readonly string[], outShape: readonly number[], final: boolean): string {
  const folded = operands.map((v) => {
    const t = b.tile(v);
    return b.tmp('reshape', [t], { shape: [b.K * v.shape[0]!, ...v.shape.slice(1)] });
  });
  const y = b.tmp(op, [...folded, ...rest], attrs);
  const shape = [b.K, ...outShape];
  return final ? b.out('reshape', [y], { shape }) : b.tmp('reshape', [y], { shape });
}

/** batch_norm with batch statistics of a batched x: (K, N, C, *S) as (N, K * C, *S), per-channel params tiled. */
function foldIntoC(b: Batcher, attrs: Record<string, unknown>, x: BatchedValue, params: readonly BatchedValue[], final: boolean): string {
  const [N, C, ...S] = x.shape as [number, number, ...number[]];
  const rank = x.shape.length;
  const perm = [1, 0, ...Array.from({ length: rank - 1 }, (_, i) => i + 2)];
  const t = b.tmp('transpose', [x.name], { perm });
  const wide = b.tmp('reshape', [t], { shape: [N, b.K * C, ...S] });
  const tiled = params.map((p) => b.tmp('reshape', [b.tile(p)], { shape: [b.K * C] }));
  const y = b.tmp('batch_norm', [wide, ...tiled], attrs);
  const back = b.tmp('reshape', [y], { shape: [N, b.K, C, ...S] });
  return final ? b.out('transpose', [back], { perm }) : b.tmp('transpose', [back], { perm });
}

/**
 * batch_norm's fused gradient ops (batch_norm_grad, batch_norm_scale_grad), whose statistics run over N: every data
 * operand (K, N, C, *S) as (N, K * C, *S), every per-channel one (C,) as (K * C,), as foldIntoC does for batch_norm.
 */
export function batchNormGradVmap(op: string, roles: readonly ('data' | 'channel')[], output: 'data' | 'channel'): Rule {
  return ({ b, inputs, attrs }) => {
    const x = inputs[roles.indexOf('data')]!;
    const [N, C, ...S] = x.shape as [number, number, ...number[]];
    const perm = [1, 0, ...Array.from({ length: x.shape.length - 1 }, (_, i) => i + 2)];
    const folded = inputs.map((v, i) => (roles[i] === 'data'
      ? b.tmp('reshape', [b.tmp('transpose', [b.tile(v)], { perm })], { shape: [N, b.K * C, ...S] })
      : b.tmp('reshape', [b.tile(v)], { shape: [b.K * C] })));
    const y = b.tmp(op, folded, attrs);
    if (output === 'channel') b.out('reshape', [y], { shape: [b.K, C] });
    else b.out('transpose', [b.tmp('reshape', [y], { shape: [N, b.K, C, ...S] })], { perm });
    return true;
  };
}

/** Pooling ops and their internal gradient ops: every operand folded into N. */
export function poolVmap(op: string): Rule {
  return ({ b, inputs, output, attrs }) => {
    foldIntoN(b, op, attrs, inputs, [], output.shape, true);
    return true;
  };
}

/** layer_norm, rms_norm, batch_norm, group_norm. */
export function normVmap(op: 'layer_norm' | 'rms_norm' | 'batch_norm' | 'group_norm'): Rule {
  return ({ b, inputs, output, attrs }) => {
    const x = inputs[0]!;
    const rank = x.shape.length;
    const params = inputs.slice(1);
    const trailing = op === 'layer_norm' || op === 'rms_norm';
    const axis = (attrs.axis as number | undefined) ?? -1;
    const rowAttrs = x.batched && axis >= 0 ? { ...attrs, axis: axis + 1 } : attrs;
    const filled = (value: number, c: number): string => b.tmp('broadcast_to', [b.scalar(value, x.dtype)], { shape: [c] });
    if (!params.some((p) => p.batched)) {
      if (trailing) b.out(op, inputs.map((v) => v.name), rowAttrs);
      else if (op === 'batch_norm' && attrs.training === true) foldIntoC(b, attrs, x, params, true);
      else foldIntoN(b, op, attrs, [x], params.map((p) => p.name), output.shape, true);
      return true;
    }
    /** A parameter shaped to broadcast against the (batched) output: (C,) per channel, or x.shape[axis:] trailing. */
    const lifted = (p: BatchedValue): string => {
      if (trailing) return p.batched ? b.tmp('reshape', [p.name], { shape: [b.K, ...new Array<number>(rank - p.shape.length).fill(1), ...p.shape] }) : p.name;
      const tail = new Array<number>(rank - 2).fill(1);
      return b.tmp('reshape', [p.name], { shape: p.batched ? [b.K, 1, p.shape[0]!, ...tail] : [p.shape[0]!, ...tail] });
    };
    const C = x.shape[1]!;
    let normalized: string;
    if (trailing) {
      normalized = b.tmp(op, [x.name], rowAttrs);
    } else if (op === 'group_norm' || attrs.training === true) {
      // normalize with unit scale and zero shift (batch_norm's statistics inputs are ignored then)
      const unit = op === 'group_norm' ? [filled(1, C), filled(0, C)] : [filled(1, C), filled(0, C), filled(0, C), filled(1, C)];
      const unitVals = unit.map((u) => ({ name: u, batched: false, shape: [C], dtype: x.dtype }));
      if (!x.batched) normalized = b.tmp(op, [x.name, ...unit], attrs);
      else normalized = op === 'group_norm' ? foldIntoN(b, op, attrs, [x], unit, output.shape, false) : foldIntoC(b, attrs, x, unitVals, false);
    } else {
      // batch_norm with given statistics: (x - mean) / sqrt(var + epsilon)
      const [, , mean, variance] = params as [BatchedValue, BatchedValue, BatchedValue, BatchedValue];
      const eps = b.scalar((attrs.epsilon as number | undefined) ?? 1e-5, x.dtype);
      const sd = b.tmp('sqrt', [b.tmp('add', [lifted(variance), eps])]);
      normalized = b.tmp('div', [b.tmp('sub', [x.name, lifted(mean)]), sd]);
    }
    const [scale, bias] = params;
    const scaled = scale ? (bias ? b.tmp('mul', [normalized, lifted(scale)]) : b.out('mul', [normalized, lifted(scale)])) : normalized;
    if (bias) b.out('add', [scaled, lifted(bias)]);
    return true;
  };
}

/** The layout of each operand and of the result of a convolution-family op (see `convVmap`). */
export interface ConvLayout {
  inputs: readonly ('data' | 'weight' | 'bias')[];
  output: 'data' | 'weight';
}

/**
 * conv, conv_transpose and their internal gradient ops, by the layout of each operand and of the result: `data` is
 * (N, channels, *spatial), `weight` (channels, ...) and `bias` (channels). When only the images are batched they are
 * more images (K * N). Otherwise K convolutions at once are one convolution with K times the groups, its data operands
 * laid out as (N, K * channels, ...) and its weight and bias operands as (K * channels, ...): the groups of batch
 * member k come k-th, and within them the op's own groups in order.
 */
export function convVmap(op: string, layout: ConvLayout): Rule {
  return ({ b, inputs, output, attrs }) => {
    const [x, ...rest] = inputs as [BatchedValue, ...BatchedValue[]];
    const imagesOnly = layout.output === 'data' && layout.inputs.slice(1).every((l) => l !== 'data');
    if (imagesOnly && x.batched && rest.every((v) => !v.batched)) {
      foldIntoN(b, op, attrs, [x], rest.map((v) => v.name), output.shape, true);
      return true;
    }
    const operands = inputs.map((v, i) => {
      const all = b.tile(v);
      if (layout.inputs[i] !== 'data') return b.tmp('reshape', [all], { shape: [b.K * v.shape[0]!, ...v.shape.slice(1)] });
      // (K, N, C, ...) -> (N, K, C, ...) -> (N, K * C, ...)
      const [n, c, ...spatial] = v.shape as [number, number, ...number[]];
      const t = b.tmp('transpose', [all], { perm: swapLeading(v.shape.length + 1) });
      return b.tmp('reshape', [t], { shape: [n, b.K * c, ...spatial] });
    });
    const groups = ((attrs.groups as number | undefined) ?? 1) * b.K;
    const y = b.tmp(op, operands, { ...attrs, groups });
    if (layout.output === 'weight') {
      b.out('reshape', [y], { shape: [b.K, ...output.shape] });
      return true;
    }
    const [n, c, ...spatial] = output.shape as [number, number, ...number[]];
    const split = b.tmp('reshape', [y], { shape: [n, b.K, c, ...spatial] });
    b.out('transpose', [split], { perm: swapLeading(output.shape.length + 1) });
    return true;
  };
}

/** The permutation of `rank` axes that swaps the first two. */
function swapLeading(rank: number): number[] {
  return [1, 0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
}
