/**
 * Batching rules (see vmap.ts) of the pooling and normalization ops. Channels-first ops fold the batch axis K into
 * their leading N axis (per-sample windows and statistics do not mix samples); batch_norm with batch statistics folds
 * it into the channels instead, since its statistics run over N. Batched parameters (scale, bias, statistics) are
 * applied as broadcasting ops after normalizing with unit ones.
 */

export interface BatchVal {
  name: string;
  batched: boolean;
  shape: number[];
  dtype: string;
}

/** What a rule needs from vmapGraph: the node being rewritten and the helpers that append nodes. */
export interface BatchNode {
  K: number;
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  ins: BatchVal[];
  outShape: number[];
  emit(name: string, op: string, inputs: string[], attrs?: Record<string, unknown>): string;
  fresh(base: string): string;
  /** Any value as a batched one (an unbatched value copied K times). */
  tile(base: string, v: BatchVal): string;
  /** A value of `shape` filled with `value` (unbatched). */
  filled(base: string, value: number, dtype: string, shape: number[]): string;
}

const POOLING = new Set(['max_pool', 'avg_pool', 'max_pool_grad', 'max_pool_gather', 'avg_pool_grad']);
export const NN_BATCHED = new Set([...POOLING, 'layer_norm', 'rms_norm', 'batch_norm', 'group_norm']);

/** Rewrites node `n` over the batch axis (its output is then batched). */
export function batchNn(n: BatchNode): void {
  const { K, name, op, attrs, ins, outShape } = n;
  const x = ins[0]!;
  const rank = x.shape.length;
  const tmp = (): string => n.fresh(name);
  const reshape = (v: string, shape: number[], to = tmp()): string => n.emit(to, 'reshape', [v], { shape });
  const ones = (c: number, value = 1): string => n.filled(name, value, x.dtype, [c]);
  /** Every (N, ...) operand as (K * N, ...), the op on those (and `rest`), the result as (K, N, ...) named `to`. */
  const foldIntoN = (operands: BatchVal[], rest: string[], to = name): string => {
    const folded = operands.map((v) => reshape(n.tile(name, v), [K * v.shape[0]!, ...v.shape.slice(1)]));
    return reshape(n.emit(tmp(), op, [...folded, ...rest], attrs), [K, ...outShape], to);
  };
  /** batch_norm with batch statistics of a batched x: (K, N, C, *S) as (N, K * C, *S), per-channel params tiled. */
  const foldIntoC = (params: BatchVal[], to = name): string => {
    const [N, C, ...S] = x.shape as [number, number, ...number[]];
    const perm = [1, 0, ...Array.from({ length: rank - 1 }, (_, i) => i + 2)];
    const wide = reshape(n.emit(tmp(), 'transpose', [x.name], { perm }), [N, K * C, ...S]);
    const tiled = params.map((p) => reshape(n.tile(name, p), [K * C]));
    const back = reshape(n.emit(tmp(), op, [wide, ...tiled], attrs), [N, K, C, ...S]);
    return n.emit(to, 'transpose', [back], { perm });
  };
  if (POOLING.has(op)) {
    foldIntoN(ins, []);
    return;
  }

  const params = ins.slice(1);
  const trailing = op === 'layer_norm' || op === 'rms_norm';
  const axis = (attrs.axis as number | undefined) ?? -1;
  const rowAttrs = x.batched && axis >= 0 ? { ...attrs, axis: axis + 1 } : attrs;
  if (!params.some((p) => p.batched)) {
    if (trailing) n.emit(name, op, ins.map((v) => v.name), rowAttrs);
    else if (op === 'batch_norm' && attrs.training === true) foldIntoC(params);
    else foldIntoN([x], params.map((p) => p.name));
    return;
  }

  /** A parameter shaped to broadcast against the (batched) output: (C,) per channel, or x.shape[axis:] trailing. */
  const lifted = (p: BatchVal): string => {
    if (trailing) return p.batched ? reshape(p.name, [K, ...new Array<number>(rank - p.shape.length).fill(1), ...p.shape]) : p.name;
    const tail = new Array<number>(rank - 2).fill(1);
    return reshape(p.name, p.batched ? [K, 1, p.shape[0]!, ...tail] : [p.shape[0]!, ...tail]);
  };
  const C = x.shape[1]!;
  let normalized: string;
  if (trailing) {
    normalized = n.emit(tmp(), op, [x.name], rowAttrs);
  } else if (op === 'group_norm' || attrs.training === true) {
    // normalize with unit scale and zero shift (batch_norm's statistics inputs are ignored then)
    const unit = op === 'group_norm' ? [ones(C), ones(C, 0)] : [ones(C), ones(C, 0), ones(C, 0), ones(C)];
    const unitVals = unit.map((u) => ({ name: u, batched: false, shape: [C], dtype: x.dtype }));
    if (!x.batched) normalized = n.emit(tmp(), op, [x.name, ...unit], attrs);
    else normalized = op === 'group_norm' ? foldIntoN([x], unit, tmp()) : foldIntoC(unitVals, tmp());
  } else {
    // batch_norm with given statistics: (x - mean) / sqrt(var + epsilon)
    const [, , mean, variance] = params as [BatchVal, BatchVal, BatchVal, BatchVal];
    const eps = n.filled(name, (attrs.epsilon as number | undefined) ?? 1e-5, x.dtype, []);
    const sd = n.emit(tmp(), 'sqrt', [n.emit(tmp(), 'add', [lifted(variance), eps])]);
    normalized = n.emit(tmp(), 'div', [n.emit(tmp(), 'sub', [x.name, lifted(mean)]), sd]);
  }
  const [scale, bias] = params;
  const scaled = scale ? n.emit(bias ? tmp() : name, 'mul', [normalized, lifted(scale)]) : normalized;
  if (bias) n.emit(name, 'add', [scaled, lifted(bias)]);
}
