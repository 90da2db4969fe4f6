/**
 * Patterns that exporters write as several ONNX nodes for one gradserve op, recognized before the nodes are mapped:
 * the exact GELU `x * 0.5 * (1 + erf(x / sqrt(2)))` (PyTorch before opset 20) becomes one `Gelu` node (ONNX's own op
 * from opset 20), so it runs as one `gelu` with its own derivative instead of five elementwise passes each way.
 * Likewise the layer norm PyTorch writes before opset 17, `(x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps)` over the
 * last axes, becomes a `LayerNormalization` without scale and bias (the Mul and Add after it stay as they are).
 * A pattern is fused only when its inner values feed nothing else; the fused node keeps the index of the pattern's
 * first node (error paths point there).
 */
import { int64, type GraphProto, type NodeProto } from './decode.js';
import { tensorFromProto } from './tensors.js';

export interface IndexedNode {
  proto: NodeProto;
  index: number;
}

/** Scalar float constants of the graph: single-element initializers and Constant nodes. */
function scalars(g: GraphProto): Map<string, number> {
  const out = new Map<string, number>();
  const take = (name: string | undefined, t: Parameters<typeof tensorFromProto>[0] | undefined) => {
    if (name === undefined || t === undefined) return;
    try {
      const { tensor } = tensorFromProto(t);
      if (tensor.data.length === 1 && (tensor.dtype === 'FP32' || tensor.dtype === 'FP64')) out.set(name, Number(tensor.data[0]));
    } catch {
      // not a number: not part of a pattern
    }
  };
  for (const t of g.initializer ?? []) take(t.name, t);
  for (const n of g.node ?? []) {
    if (n.op_type === 'Constant' && (n.domain ?? '') === '') {
      const a = (n.attribute ?? []).find((x) => x.name === 'value');
      take(n.output?.[0], a?.t);
      const f = (n.attribute ?? []).find((x) => x.name === 'value_float');
      if (f !== undefined && n.output?.[0] !== undefined) out.set(n.output[0], f.f ?? 0);
    }
  }
  return out;
}

function intsAttr(n: NodeProto, name: string): number[] | undefined {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a === undefined ? undefined : (a.ints ?? []).map(int64);
}

function intAttr(n: NodeProto, name: string, dflt: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a === undefined ? dflt : int64(a.i);
}

const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

export function fusePatterns(g: GraphProto): IndexedNode[] {
  const nodes: IndexedNode[] = (g.node ?? []).map((proto, index) => ({ proto, index }));
  const consumers = new Map<string, number>();
  for (const n of g.node ?? []) for (const i of n.input ?? []) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  for (const o of g.output ?? []) consumers.set(o.name ?? '', (consumers.get(o.name ?? '') ?? 0) + 1);
  const producer = new Map<string, IndexedNode>();
  for (const n of nodes) for (const o of n.proto.output ?? []) producer.set(o, n);
  const consts = scalars(g);
  const only = (v: string) => consumers.get(v) === 1;
  const is = (n: IndexedNode | undefined, op: string) => n !== undefined && n.proto.op_type === op && (n.proto.domain ?? '') === '';
  const other = (n: NodeProto, v: string) => ((n.input ?? [])[0] === v ? (n.input ?? [])[1] : (n.input ?? [])[0]) ?? '';

  const drop = new Set<IndexedNode>();
  const replace = new Map<IndexedNode, IndexedNode>();
  for (const erf of nodes) {
    if (!is(erf, 'Erf')) continue;
    const div = producer.get(erf.proto.input?.[0] ?? '');
    if (!is(div, 'Div') || !near(consts.get(div!.proto.input?.[1] ?? ''), Math.SQRT2) || !only(div!.proto.output![0]!)) continue;
    const x = div!.proto.input![0]!;
    const erfOut = erf.proto.output![0]!;
    if (!only(erfOut)) continue;
    const add = nodes.find((n) => is(n, 'Add') && (n.proto.input ?? []).includes(erfOut));
    if (add === undefined || !near(consts.get(other(add.proto, erfOut)), 1) || !only(add.proto.output![0]!)) continue;
    const addOut = add.proto.output![0]!;
    const mul = nodes.find((n) => is(n, 'Mul') && (n.proto.input ?? []).includes(addOut));
    if (mul === undefined || other(mul.proto, addOut) !== x || !only(mul.proto.output![0]!)) continue;
    const mulOut = mul.proto.output![0]!;
    const half = nodes.find((n) => is(n, 'Mul') && (n.proto.input ?? []).includes(mulOut));
    if (half === undefined || !near(consts.get(other(half.proto, mulOut)), 0.5)) continue;
    for (const n of [div!, erf, add, mul]) drop.add(n);
    replace.set(half, { index: div!.index, proto: { op_type: 'Gelu', domain: '', name: half.proto.name ?? '', input: [x], output: [half.proto.output![0]!], attribute: [] } });
  }
  for (const rm1 of nodes) {
    if (!is(rm1, 'ReduceMean') || drop.has(rm1)) continue;
    const x = rm1.proto.input?.[0] ?? '';
    const axes = intsAttr(rm1.proto, 'axes');
    if (axes === undefined || (rm1.proto.input ?? []).length > 1 || intAttr(rm1.proto, 'keepdims', 1) !== 1) continue;
    const m = rm1.proto.output![0]!;
    if (!only(m)) continue;
    const sub = nodes.find((n) => is(n, 'Sub') && n.proto.input?.[0] === x && n.proto.input?.[1] === m);
    if (sub === undefined) continue;
    const d = sub.proto.output![0]!;
    if (consumers.get(d) !== 2) continue;
    const pow = nodes.find((n) => is(n, 'Pow') && n.proto.input?.[0] === d && near(consts.get(n.proto.input?.[1] ?? ''), 2));
    const div = nodes.find((n) => is(n, 'Div') && n.proto.input?.[0] === d);
    if (pow === undefined || div === undefined || !only(pow.proto.output![0]!)) continue;
    const rm2 = nodes.find((n) => is(n, 'ReduceMean') && n.proto.input?.[0] === pow.proto.output![0] && (n.proto.input ?? []).length === 1);
    if (rm2 === undefined || JSON.stringify(intsAttr(rm2.proto, 'axes')) !== JSON.stringify(axes) || intAttr(rm2.proto, 'keepdims', 1) !== 1 || !only(rm2.proto.output![0]!)) continue;
    const add = nodes.find((n) => is(n, 'Add') && (n.proto.input ?? []).includes(rm2.proto.output![0]!));
    const eps = add === undefined ? undefined : consts.get(other(add.proto, rm2.proto.output![0]!));
    if (add === undefined || eps === undefined || !(eps >= 0) || !only(add.proto.output![0]!)) continue;
    const sqrt = nodes.find((n) => is(n, 'Sqrt') && n.proto.input?.[0] === add.proto.output![0]);
    if (sqrt === undefined || !only(sqrt.proto.output![0]!) || div.proto.input?.[1] !== sqrt.proto.output![0]) continue;
    // Over the last axes only (layer_norm normalizes from `axis` to the end).
    const sorted = [...axes].sort((a, b) => a - b);
    const negative = sorted.every((a) => a < 0) && sorted[sorted.length - 1] === -1 && sorted.every((a, i) => i === 0 || a === sorted[i - 1]! + 1);
    if (!negative) continue;
    for (const n of [rm1, sub, pow, rm2, add, sqrt]) drop.add(n);
    replace.set(div, {
      index: rm1.index,
      proto: {
        op_type: 'LayerNormalization', domain: '', name: div.proto.name ?? '', input: [x], output: [div.proto.output![0]!],
        attribute: [{ name: 'axis', type: 2, i: sorted[0]! }, { name: 'epsilon', type: 1, f: eps }],
      },
    });
  }
  if (replace.size === 0) return nodes;
  return nodes.filter((n) => !drop.has(n)).map((n) => replace.get(n) ?? n);
}
