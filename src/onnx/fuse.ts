/**
 * Patterns that exporters write as several ONNX nodes for one gradserve op, recognized before the nodes are mapped:
 * the exact GELU `x * 0.5 * (1 + erf(x / sqrt(2)))` (PyTorch before opset 20) becomes one `Gelu` node (ONNX's own op
 * from opset 20), so it runs as one `gelu` with its own derivative instead of five elementwise passes each way.
 * A pattern is fused only when its inner values feed nothing else; the fused node keeps the index of the pattern's
 * first node (error paths point there).
 */
import type { GraphProto, NodeProto } from './decode.js';
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
  if (replace.size === 0) return nodes;
  return nodes.filter((n) => !drop.has(n)).map((n) => replace.get(n) ?? n);
}
