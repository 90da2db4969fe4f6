/**
 * Batching rules (see vmap.ts) of the pooling and normalization ops. Channels-first ops fold the batch axis K into
 * their leading N axis (per-sample windows and statistics do not mix samples); batch_norm with batch statistics folds
 * it into the channels instead, since its statistics run over N.
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
  /** No rule for this node: the caller falls back to one pass per basis vector. */
  unbatchable(reason: string): never;
}

const POOLING = new Set(['max_pool', 'avg_pool', 'max_pool_grad', 'max_pool_gather', 'avg_pool_grad']);
export const NN_BATCHED = new Set([...POOLING, 'layer_norm', 'rms_norm', 'batch_norm', 'group_norm']);

/** Rewrites node `n` over the batch axis; returns whether its output is batched. */
export function batchNn(n: BatchNode): boolean {
  const { K, name, op, attrs, ins, outShape } = n;
  const x = ins[0]!;
  const reshape = (v: string, shape: number[], to = n.fresh(name)): string => n.emit(to, 'reshape', [v], { shape });
  /** Every (N, ...) operand as (K * N, ...), the op on those, the result as (K, N, ...). */
  const foldIntoN = (operands: BatchVal[], rest: string[]): true => {
    const folded = operands.map((v) => reshape(n.tile(name, v), [K * v.shape[0]!, ...v.shape.slice(1)]));
    const out = n.emit(n.fresh(name), op, [...folded, ...rest], attrs);
    reshape(out, [K, ...outShape], name);
    return true;
  };
  if (POOLING.has(op)) return foldIntoN(ins, []);

  const params = ins.slice(1);
  if (op === 'layer_norm' || op === 'rms_norm') {
    const axis = (attrs.axis as number | undefined) ?? -1;
    if (!params.some((p) => p.batched)) {
      n.emit(name, op, ins.map((v) => v.name), { ...attrs, axis: axis < 0 ? axis : axis + 1 });
      return true;
    }
    // a batched scale or bias: normalize, then scale and shift as broadcasting ops
    let y: BatchVal = { ...x, name: n.fresh(name) };
    n.emit(y.name, op, [x.name], x.batched ? { ...attrs, axis: axis < 0 ? axis : axis + 1 } : attrs);
    params.forEach((p, i) => {
      const lifted = p.batched ? reshape(p.name, [K, ...new Array<number>(x.shape.length - p.shape.length).fill(1), ...p.shape]) : p.name;
      const to = i === params.length - 1 ? name : n.fresh(name);
      n.emit(to, i === 0 ? 'mul' : 'add', [y.name, lifted]);
      y = { ...y, name: to, batched: true };
    });
    return true;
  }
  if (params.some((p) => p.batched)) n.unbatchable(`batched parameters of ${op} node "${name}"`);
  if (op === 'group_norm' || (op === 'batch_norm' && attrs.training !== true)) return foldIntoN([x], params.map((p) => p.name));
  if (op === 'batch_norm') {
    // (K, N, C, *S) -> (N, K * C, *S): statistics per (k, c) over N and the spatial axes
    const [N, C, ...S] = x.shape as [number, number, ...number[]];
    const rank = x.shape.length + 1;
    const perm = [1, 0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const moved = n.emit(n.fresh(name), 'transpose', [x.name], { perm });
    const wide = reshape(moved, [N, K * C, ...S]);
    const tiled = params.map((p) => reshape(n.tile(name, p), [K * C]));
    const out = n.emit(n.fresh(name), op, [wide, ...tiled], attrs);
    const back = reshape(out, [N, K, C, ...S]);
    n.emit(name, 'transpose', [back], { perm });
    return true;
  }
  return n.unbatchable(`no batching rule for op "${op}" (node "${name}")`);
}
