/**
 * Pictures of graphs (/v1/render): a forward graph, and optionally its derivative graph beside it, as Graphviz DOT.
 * Each drawn value is labelled with its op (or its kind: input, parameter, constant), its name, and its shape and
 * datatype where they are known. The derivative graph is drawn as what /v1/transform returns: the forward values it
 * reads sit in the forward cluster and are linked to the derivative nodes that read them by dashed edges; the forward
 * nodes and the inputs the transform pruned away are left out (the caption counts them).
 *
 * Layout is not done here: src/server/render/svg.ts hands this text to Graphviz.
 */
import { inferNode, type Metas } from '../../graph/infer.js';
import type { Graph } from '../../graph/types.js';
import { compileGraph, type CompiledGraph } from '../../graph/validate.js';
import type { Dim } from '../../tensor/shape.js';

export type Role = 'input' | 'parameter' | 'constant' | 'op';
export type Side = 'forward' | 'derivative';

export interface DrawnValue {
  name: string;
  role: Role;
  side: Side;
  /** the op of a node */
  op?: string;
  attrs?: Record<string, unknown>;
  shape?: Dim[];
  datatype?: string;
  /** an output of the drawn graph (or of the forward graph, when it is still there) */
  output: boolean;
}

export interface DrawnEdge {
  from: string;
  to: string;
  /** a forward value read by a derivative node */
  shared: boolean;
}

export interface Scene {
  values: DrawnValue[];
  edges: DrawnEdge[];
  /** e.g. "grad of loss with respect to w1, w2"; undefined for a forward graph alone */
  derivative?: string;
  /** forward values the derivative graph does not need, left out of the picture */
  leftOut: string[];
}

export interface SceneRequest {
  forward: Graph;
  /** the derivative graph of `forward` (as /v1/transform returns it) and what it is */
  derivative?: { graph: Graph; caption: string };
  /** inputs drawn as parameters (weights) rather than data */
  parameters: ReadonlySet<string>;
}

/**
 * Shapes and datatypes as far as the declarations tell them: an input without a declared shape, and every value
 * computed from it, is drawn without one.
 */
function knownMetas(c: CompiledGraph): Metas {
  const metas: Metas = new Map();
  for (const [name, d] of c.inputs) if (d.shape !== undefined) metas.set(name, { shape: [...d.shape], dtype: d.dtype ?? 'FP32' });
  for (const [name, t] of c.constants) metas.set(name, { shape: [...t.shape], dtype: t.dtype });
  for (const n of c.order) {
    const ins = n.inputs.map((i) => metas.get(i));
    if (ins.every((m) => m !== undefined)) metas.set(n.name, inferNode(n, ins as NonNullable<(typeof ins)[number]>[]));
  }
  return metas;
}

/**
 * The forward value a value of the derivative graph is, if any. A transform renames a forward node whose name it
 * needs for an output (`grad:w` becomes `grad:w~1`, see reserveNames in autodiff/writer.ts): the renamed node is the
 * forward one, the name itself is then the derivative's.
 */
function forwardNamer(drawn: Iterable<string>, forward: Set<string>): (name: string) => string | undefined {
  const renamed = new Map<string, string>();
  for (const name of drawn) {
    const m = /^(.*)~\d+$/.exec(name);
    if (m !== null && !forward.has(name) && forward.has(m[1]!)) renamed.set(name, m[1]!);
  }
  const givenUp = new Set(renamed.values());
  return (name) => (givenUp.has(name) ? undefined : forward.has(name) ? name : renamed.get(name));
}

export function buildScene(req: SceneRequest): Scene {
  const fwd = compileGraph(req.forward);
  const drawn = req.derivative === undefined ? fwd : compileGraph(req.derivative.graph);
  const metas = knownMetas(drawn);
  const forwardNames = new Set(fwd.kinds.keys());
  const forwardName = forwardNamer(drawn.kinds.keys(), forwardNames);
  const forwardOutputs = new Set(fwd.outputs);
  const outputs = new Set([...drawn.outputs, ...fwd.outputs]);

  // In a derivative graph, inputs and constants nothing reads are left out (the transform keeps every input).
  const read = new Set<string>();
  for (const n of drawn.order) for (const i of n.inputs) read.add(i);
  const keep = (name: string): boolean => req.derivative === undefined || read.has(name) || outputs.has(name);

  const values: DrawnValue[] = [];
  const sideOf = new Map<string, Side>();
  const add = (v: Omit<DrawnValue, 'shape' | 'datatype' | 'output'>, output: boolean): void => {
    const m = metas.get(v.name);
    const value: DrawnValue = { ...v, output };
    if (m !== undefined) {
      value.shape = [...m.shape];
      value.datatype = m.dtype;
    }
    values.push(value);
    sideOf.set(v.name, v.side);
  };
  for (const name of drawn.inputs.keys()) {
    if (!keep(name)) continue;
    const side: Side = forwardNames.has(name) ? 'forward' : 'derivative';
    add({ name, role: req.parameters.has(name) ? 'parameter' : 'input', side }, outputs.has(name));
  }
  for (const name of drawn.constants.keys()) {
    if (!keep(name)) continue;
    add({ name, role: 'constant', side: forwardNames.has(name) ? 'forward' : 'derivative' }, outputs.has(name));
  }
  for (const n of drawn.order) {
    const f = forwardName(n.name);
    const spec = drawn.graph.nodes[n.index]!;
    const v: Omit<DrawnValue, 'shape' | 'datatype' | 'output'> = { name: n.name, role: 'op', side: f === undefined ? 'derivative' : 'forward', op: n.op.name };
    if (spec.attrs !== undefined && Object.keys(spec.attrs).length > 0) v.attrs = spec.attrs;
    add(v, drawn.outputs.includes(n.name) || (f !== undefined && forwardOutputs.has(f)));
  }

  const edges: DrawnEdge[] = [];
  for (const n of drawn.order) {
    for (const i of n.inputs) {
      if (!sideOf.has(i)) continue;
      edges.push({ from: i, to: n.name, shared: sideOf.get(i) === 'forward' && sideOf.get(n.name) === 'derivative' });
    }
  }

  const scene: Scene = { values, edges, leftOut: [] };
  if (req.derivative !== undefined) {
    scene.derivative = req.derivative.caption;
    const kept = new Set([...sideOf.keys()].map((d) => forwardName(d)));
    scene.leftOut = [...fwd.kinds.keys()].filter((name) => !kept.has(name));
  }
  return scene;
}

// ---------------------------------------------------------------------------------------------- DOT text

/** Colours of the picture: inputs blue, parameters amber, constants grey, forward ops white, derivative ops red. */
const STYLE: Record<Role, Record<Side, string>> = {
  input: {
    forward: 'shape=ellipse, style=filled, fillcolor="#dbeafe", color="#1d4ed8"',
    derivative: 'shape=ellipse, style=filled, fillcolor="#fee2e2", color="#b91c1c"',
  },
  parameter: {
    forward: 'shape=ellipse, style=filled, fillcolor="#fef3c7", color="#b45309"',
    derivative: 'shape=ellipse, style=filled, fillcolor="#fef3c7", color="#b45309"',
  },
  constant: {
    forward: 'shape=box, style="rounded,filled", fillcolor="#f3f4f6", color="#9ca3af", fontsize=9',
    derivative: 'shape=box, style="rounded,filled", fillcolor="#f3f4f6", color="#f87171", fontsize=9',
  },
  op: {
    forward: 'shape=box, style="rounded,filled", fillcolor="#ffffff", color="#374151"',
    derivative: 'shape=box, style="rounded,filled", fillcolor="#fee2e2", color="#b91c1c"',
  },
};

/** Text inside a Graphviz HTML-like label. */
function html(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A Graphviz double-quoted string (with no escape sequences left for Graphviz to expand). */
function quoted(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, ' ')}"`;
}

export function fmtDims(shape: readonly Dim[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

function label(v: DrawnValue): string {
  const head = v.role === 'op' ? v.op! : v.role;
  const lines = [`<b>${html(head)}</b>`, `<font point-size="9" color="#4b5563">${html(v.name)}</font>`];
  if (v.shape !== undefined) lines.push(`<font point-size="9">${html(fmtDims(v.shape))} ${html(v.datatype!)}</font>`);
  return `<${lines.join('<br/>')}>`;
}

function tooltip(v: DrawnValue): string {
  const what = v.role === 'op' ? `${v.op}${v.attrs === undefined ? '' : ` ${JSON.stringify(v.attrs)}`}` : v.role;
  const shape = v.shape === undefined ? '' : ` ${fmtDims(v.shape)} ${v.datatype}`;
  const t = `${v.name}: ${what}${shape}`;
  return t.length > 300 ? `${t.slice(0, 297)}...` : t;
}

/**
 * Above this many values edges are drawn straight: routing curved edges, the long links between the two graphs above
 * all, costs Graphviz several times the layout itself (about 10x at 200 values).
 */
export const CURVED_EDGES_MAX = 80;

const CLUSTER = 'style="rounded", color="#9ca3af", fontcolor="#374151", fontsize=12, margin=12';

/** The scene as DOT: one cluster per side, nodes `v0`, `v1`, ... (names can hold any character) with `id` the name. */
export function toDot(scene: Scene): string {
  const ids = new Map(scene.values.map((v, i) => [v.name, `v${i}`]));
  const node = (v: DrawnValue): string => {
    const cls = `${v.side} ${v.role}${v.output ? ' output' : ''}`;
    const out = v.output ? ', penwidth=2.2' : '';
    return `    ${ids.get(v.name)} [label=${label(v)}, ${STYLE[v.role][v.side]}${out}, id=${quoted(`value:${v.name}`)}, class=${quoted(cls)}, tooltip=${quoted(tooltip(v))}];`;
  };
  const lines = [
    'digraph gradserve {',
    `  graph [rankdir=TB, fontname="Helvetica,Arial,sans-serif", nodesep=0.3, ranksep=0.35, newrank=true${scene.values.length > CURVED_EDGES_MAX ? ', splines=line' : ''}];`,
    '  node [fontname="Helvetica,Arial,sans-serif", fontsize=11, margin="0.12,0.04", height=0.3];',
    '  edge [color="#6b7280", arrowsize=0.6];',
  ];
  const forward = scene.values.filter((v) => v.side === 'forward');
  const derivative = scene.values.filter((v) => v.side === 'derivative');
  if (scene.derivative === undefined) {
    lines.push(...forward.map(node));
  } else {
    const left = scene.leftOut.length === 0 ? '' : `<br/><font point-size="9">${scene.leftOut.length} forward value${scene.leftOut.length === 1 ? '' : 's'} the derivative does not need left out</font>`;
    lines.push('  subgraph cluster_forward {', `    graph [label=<forward graph${left}>, ${CLUSTER}];`, ...forward.map(node), '  }');
    lines.push('  subgraph cluster_derivative {', `    graph [label=<derivative graph: ${html(scene.derivative)}>, ${CLUSTER}, color="#f87171"];`, ...derivative.map(node), '  }');
  }
  for (const e of scene.edges) {
    // Shared values do not rank the derivative nodes: the two graphs are laid out side by side, linked.
    const style = e.shared ? ' [style=dashed, color="#2563eb", constraint=false, class="shared"]' : '';
    lines.push(`  ${ids.get(e.from)} -> ${ids.get(e.to)}${style};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
