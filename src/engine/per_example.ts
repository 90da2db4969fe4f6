/**
 * Per-example gradients (API.md "Batched derivatives", `/v1/grad` with `per_example`): the gradient of `of` for each
 * slice of the named inputs along an axis, as if the graph ran on that slice alone with the axis kept at size 1.
 *
 * The gradient graph is built for one example (the sliced inputs with size 1 along the axis) and vectorized over the N
 * examples (vmap.ts), forward nodes included: a loss's mean over the batch becomes the mean over the one-example slice
 * because the batching rules reduce every axis but the batch axis. The vectorized graph, the reshapes that turn the
 * sliced inputs into [N, ...one-example shape] and back, and the whole batch's forward pass (for `outputs`) are one
 * graph, so one pass computes everything. Memory permitting; else chunks of examples, else (no batching rule) a loop.
 */
import type { GradOptions, GradResult, PerExample, Tensors } from '../engine.types.js';
import { GradserveError, fail, fmtShape } from '../errors.js';
import { nameMap } from '../graph/names.js';
import { LruCache, tensorsSignature } from '../graph/hash.js';
import { freezeGraph } from '../graph/plan.js';
import type { Graph, InputSpec, NodeSpec, ValueInfo, WireTensor } from '../graph/types.js';
import { wireConstantBytes, type CompiledGraph } from '../graph/validate.js';
import { allocArray, BYTES_PER_ELEMENT } from '../tensor/dtype.js';
import { normalizeAxis } from '../tensor/shape.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import { Unbatchable, vmapGraph, type VmapResult } from '../autodiff/vmap.js';
import { wantedOutputs } from '../autodiff/linear_plan.js';
import { checkBatchBudget, rows } from './batched.js';
import { checkScalarOf, checkWrt } from './hessian.js';
import { DEFAULT_MEMORY_BUDGET_BYTES } from './jacobian.js';
import { innerOptions, tensorSpecs, type EngineCore } from './linear.js';

interface Sliced {
  name: string;
  /** the axis, normalized against this input's rank */
  axis: number;
  /** the input's shape with 1 on the axis */
  one: number[];
}

/** What a (graph, shapes, of, wrt, per_example) request needs besides its tensors; cached. */
interface PerExamplePlan {
  sliced: Sliced[];
  /** the gradient graph of one example */
  grad: Graph;
  /** shapes of its values for one example */
  values: Record<string, ValueInfo>;
  /** peak bytes of one example's gradient pass */
  onePeak: number;
  /** composed graphs by (count, with forward) */
  composed: Map<string, Composed>;
}

interface Composed {
  graph: Graph;
  /** wrt -> output name */
  grads: Record<string, string>;
}

const plans = new LruCache<PerExamplePlan>(64, 1 << 28, (p) => wireConstantBytes(p.grad));

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

/** per_example as given: {axis: integer, inputs: non-empty list of graph input names}. */
function checkSpec(c: CompiledGraph, pe: PerExample): string[] {
  if (typeof pe !== 'object' || pe === null) fail('INVALID_REQUEST', 'per_example must be an object {axis, inputs}', 'per_example');
  if (!Number.isInteger(pe.axis)) fail('INVALID_REQUEST', 'per_example.axis must be an integer', 'per_example.axis');
  if (!Array.isArray(pe.inputs) || pe.inputs.length === 0) fail('INVALID_REQUEST', 'per_example.inputs must be a non-empty list of graph input names', 'per_example.inputs');
  pe.inputs.forEach((n, i) => {
    const path = `per_example.inputs[${i}]`;
    if (typeof n !== 'string') fail('INVALID_REQUEST', `${path} must be a value name (string)`, path);
    const kind = c.kinds.get(n);
    if (kind === undefined) fail('UNKNOWN_VALUE', `${path}: "${n}" names no input, constant or node of the graph`, path);
    if (kind !== 'input') fail('UNKNOWN_VALUE', `${path}: "${n}" is a ${kind}, not a graph input; per-example slices are taken of graph inputs`, path);
  });
  return unique(pe.inputs);
}

/** The sliced inputs with their normalized axis; N, which must be the same for all. */
function slicesOf(names: string[], pe: PerExample, inputs: Tensors): { sliced: Sliced[]; N: number } {
  const sliced: Sliced[] = [];
  let N = -1;
  let first = '';
  for (const name of names) {
    const t = inputs[name]!;
    const axis = normalizeAxis(pe.axis, t.shape.length);
    if (axis === undefined) {
      fail('SHAPE_MISMATCH', `per_example.axis ${pe.axis} is out of range for inputs.${name} ${fmtShape(t.shape)} (rank ${t.shape.length})`, 'per_example.axis');
    }
    const n = t.shape[axis]!;
    if (N < 0) {
      N = n;
      first = name;
    } else if (n !== N) {
      fail('SHAPE_MISMATCH',
        `per_example: inputs.${first} has ${N} examples along axis ${pe.axis} but inputs.${name} ${fmtShape(t.shape)} has ${n}; every sliced input needs the same number`,
        `per_example.inputs[${pe.inputs.indexOf(name)}]`);
    }
    sliced.push({ name, axis, one: t.shape.map((d, i) => (i === axis ? 1 : d)) });
  }
  return { sliced, N };
}

function buildPlan(core: EngineCore, c: CompiledGraph, inputs: Tensors, of: string, wrt: string[], sliced: Sliced[]): PerExamplePlan {
  // The graph as it runs on one example: the sliced inputs declared with size 1 on the axis, the others as given.
  const declared: Record<string, InputSpec> = nameMap();
  const specs: Record<string, ValueInfo> = nameMap();
  for (const [k, spec] of Object.entries(c.graph.inputs ?? {})) {
    const t = inputs[k];
    const s = sliced.find((x) => x.name === k);
    if (t === undefined) declared[k] = spec;
    else {
      declared[k] = { shape: s ? s.one : [...t.shape], datatype: t.dtype };
      specs[k] = { shape: s ? s.one : [...t.shape], datatype: t.dtype };
    }
  }
  const oneGraph: Graph = { ...c.graph, inputs: declared };
  let shapes;
  try {
    shapes = core.shapes(oneGraph, specs);
  } catch (e) {
    if (!(e instanceof GradserveError)) throw e;
    throw new GradserveError(e.code, `per_example: the graph does not run on one example (${sliced.map((s) => `${s.name} ${fmtShape(s.one)}`).join(', ')}): ${e.message}`, { errors: e.errors });
  }
  checkScalarOf(shapes.values, of);
  checkWrt(shapes.values, wrt);
  const grad = core.transform(oneGraph, { transform: 'grad', of, wrt });
  const g = core.shapes(grad, specs);
  return { sliced, grad, values: g.values, onePeak: g.peakBytes, composed: new Map() };
}

/**
 * The per-example graph for `count` examples: the sliced inputs (count along their axis) reshaped to
 * [count, ...one-example shape], the vectorized gradient graph under fresh names, each gradient put back in its
 * layout; with `forward`, also the original graph's nodes (names unchanged) for the whole batch's outputs.
 */
function compose(original: Graph, p: PerExamplePlan, vm: VmapResult, wrt: string[], count: number, forward: boolean, chunkInputs: Record<string, InputSpec>): Composed {
  const taken = new Set<string>([...Object.keys(original.inputs ?? {}), ...Object.keys(original.constants ?? {}), ...original.nodes.map((n) => n.name)]);
  const fresh = (base: string): string => {
    let n = `${base}::pe`;
    for (let i = 2; taken.has(n); i++) n = `${base}::pe${i}`;
    taken.add(n);
    return n;
  };
  const nodes: NodeSpec[] = forward ? [...original.nodes] : [];
  const constants: Record<string, WireTensor> = forward ? { ...(original.constants ?? {}) } : {};
  const rename = new Map<string, string>();
  for (const s of p.sliced) {
    const shape = chunkInputs[s.name]!.shape as number[];
    const rank = shape.length;
    let v = s.name;
    if (s.axis !== 0) {
      v = fresh(`${s.name}:examples_first`);
      nodes.push({ name: v, op: 'transpose', inputs: [s.name], attrs: { perm: [s.axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== s.axis)] } });
    }
    const ex = fresh(`${s.name}:examples`);
    nodes.push({ name: ex, op: 'reshape', inputs: [v], attrs: { shape: [count, ...s.one] } });
    rename.set(s.name, ex);
  }
  const sliced = new Set(p.sliced.map((s) => s.name));
  const nameOf = (n: string): string => {
    let r = rename.get(n);
    if (r === undefined) {
      r = fresh(n);
      rename.set(n, r);
    }
    return r;
  };
  for (const n of Object.keys(vm.graph.inputs ?? {})) if (!sliced.has(n)) rename.set(n, n);
  for (const [k, t] of Object.entries(vm.graph.constants ?? {})) {
    // the graph's own constants keep their names (the very same wire objects: no second copy)
    if (original.constants?.[k] === t) rename.set(k, k);
    constants[nameOf(k)] = t;
  }
  for (const n of vm.graph.nodes) {
    const node: NodeSpec = { name: nameOf(n.name), op: n.op, inputs: n.inputs.map(nameOf) };
    if (n.attrs !== undefined) node.attrs = n.attrs;
    nodes.push(node);
  }
  const grads: Record<string, string> = nameMap();
  for (const w of wrt) {
    const g = `grad:${w}`;
    const one = p.values[g]!.shape;
    let v = nameOf(g);
    if (!vm.batchedOutputs[g]) {
      const b = fresh(`${g}:every_example`);
      nodes.push({ name: b, op: 'broadcast_to', inputs: [v], attrs: { shape: [count, ...one] } });
      v = b;
    }
    const s = p.sliced.find((x) => x.name === w);
    if (s !== undefined) {
      // [count, ...one] back to the input's own layout: count in place of the 1 on the axis
      const rest = one.filter((_, i) => i !== s.axis);
      const flat = fresh(`${g}:examples`);
      nodes.push({ name: flat, op: 'reshape', inputs: [v], attrs: { shape: [count, ...rest] } });
      v = flat;
      if (s.axis !== 0) {
        const back = fresh(`${g}:layout`);
        const perm = [...Array.from({ length: s.axis }, (_, i) => i + 1), 0, ...Array.from({ length: rest.length - s.axis }, (_, i) => s.axis + 1 + i)];
        nodes.push({ name: back, op: 'transpose', inputs: [v], attrs: { perm } });
        v = back;
      }
    }
    grads[w] = v;
  }
  const outputs = [...Object.values(grads)];
  const graph: Graph = { inputs: chunkInputs, constants, nodes, outputs };
  return { graph: freezeGraph(graph), grads };
}

/** Slices [start, start + count) of t along axis (a view when axis is 0). */
function along(t: Tensor, axis: number, start: number, count: number): Tensor {
  if (axis === 0) return rows(t, start, count);
  const outer = numel(t.shape.slice(0, axis));
  const inner = numel(t.shape.slice(axis + 1));
  const n = t.shape[axis]!;
  const data = allocArray(t.dtype, outer * count * inner);
  for (let o = 0; o < outer; o++) (data as Float64Array).set((t.data as Float64Array).subarray((o * n + start) * inner, (o * n + start + count) * inner), o * count * inner);
  return { dtype: t.dtype, shape: t.shape.map((d, i) => (i === axis ? count : d)), data };
}

/** Writes src (count along axis) into dst (N along axis) at start. */
function writeAlong(dst: Tensor, src: Tensor, axis: number, start: number): void {
  const outer = numel(dst.shape.slice(0, axis));
  const inner = numel(dst.shape.slice(axis + 1));
  const n = dst.shape[axis]!;
  const count = src.shape[axis]!;
  for (let o = 0; o < outer; o++) (dst.data as Float64Array).set((src.data as Float64Array).subarray(o * count * inner, (o + 1) * count * inner), (o * n + start) * inner);
}

export async function perExampleGrad(core: EngineCore, c: CompiledGraph, inputs: Tensors, of: string, wrt0: string[], pe: PerExample, opts: GradOptions): Promise<GradResult> {
  const names = checkSpec(c, pe);
  const wrt = unique(wrt0);
  // the whole batch: checks the tensors against the graph, sizes the forward pass
  const full = core.shapes(c.graph, tensorSpecs(inputs));
  const { sliced, N } = slicesOf(names, pe, inputs);
  const key = `${c.id}|${tensorsSignature(inputs)}|per_example|${JSON.stringify([of, wrt, pe.axis, names])}`;
  let p = plans.get(key);
  if (p === undefined) {
    p = buildPlan(core, c, inputs, of, wrt, sliced);
    plans.set(key, p);
  }
  const plan = p;

  // memory: one example's pass, then each further example's slice of the inputs and its gradients
  const bytes = (v: ValueInfo): number => numel(v.shape) * BYTES_PER_ELEMENT[v.datatype];
  const perExample = sliced.reduce((s, x) => s + bytes({ shape: x.one, datatype: inputs[x.name]!.dtype }), 0) +
    wrt.reduce((s, w) => s + bytes(plan.values[`grad:${w}`]!), 0);
  const results: Record<string, readonly number[]> = {};
  for (const w of wrt) if (!sliced.some((s) => s.name === w)) results[`gradients.${w}`] = plan.values[`grad:${w}`]!.shape;
  const need = Math.max(full.peakBytes, checkBatchBudget({ what: 'per-example gradients', letter: 'N', size: N, oneBytes: plan.onePeak, perMemberBytes: perExample, results }, opts));
  const budget = opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;

  const stats = { nodes: 0, flops: 0, bytes: 0 };
  const inner = innerOptions(opts, stats);
  const wanted = wantedOutputs(c.graph, [of]);
  const chunkInputs = (count: number): Record<string, InputSpec> => {
    const out: Record<string, InputSpec> = nameMap();
    for (const [k, spec] of Object.entries(c.graph.inputs ?? {})) {
      const t = inputs[k];
      const s = sliced.find((x) => x.name === k);
      out[k] = t === undefined ? spec : { shape: s ? t.shape.map((d, i) => (i === s.axis ? count : d)) : [...t.shape], datatype: t.dtype };
    }
    return out;
  };
  const composed = (count: number, forward: boolean): Composed => {
    const k = `${count}|${forward}`;
    let hit = plan.composed.get(k);
    if (hit === undefined) {
      hit = compose(c.graph, plan, vmapGraph(plan.grad, sliced.map((s) => s.name), plan.values, count), wrt, count, forward, chunkInputs(count));
      plan.composed.set(k, hit);
    }
    return hit;
  };
  const gradients: Tensors = nameMap();
  const report = { size: N, vectorized: true, chunk: N, passes: 0 } as NonNullable<GradResult['batching']>;
  const finish = (outputs: Tensors): GradResult => {
    opts.onExecuted?.(stats);
    const ordered: Tensors = nameMap();
    for (const w of wrt0) ordered[w] = gradients[w]!;
    return { outputs, gradients: ordered, batching: report };
  };

  // The chunk: every example in one pass with the forward when that fits, else halved until a pass fits beside the
  // other examples' gradients (shape inference only).
  let chunk = Math.min(N, Math.max(1, opts.batchChunk ?? Infinity));
  let reason: string | undefined = opts.vectorize === false ? 'vectorize: false' : undefined;
  let peak = need;
  if (reason === undefined && N > 0) {
    try {
      for (;;) {
        const whole = chunk === N;
        const g = composed(chunk, whole).graph;
        const specs: Record<string, ValueInfo> = nameMap();
        for (const [k, v] of Object.entries(g.inputs!)) specs[k] = { shape: v.shape as number[], datatype: v.datatype as ValueInfo['datatype'] };
        const s = core.shapes(g, specs);
        const total = s.peakBytes + (whole ? 0 : (N - chunk) * perExample + full.peakBytes);
        const elementsOk = opts.maxTensorElements === undefined || Object.values(s.values).every((v) => numel(v.shape) <= opts.maxTensorElements!);
        if ((total <= budget && elementsOk) || chunk === 1) {
          peak = Math.max(peak, total);
          break;
        }
        chunk = Math.max(1, Math.floor(chunk / 2));
      }
    } catch (e) {
      const recoverable = e instanceof Unbatchable || (e instanceof GradserveError && !['CANCELLED', 'DEADLINE_EXCEEDED', 'TOO_LARGE'].includes(e.code));
      if (!recoverable) throw e;
      reason = e instanceof Error ? e.message : String(e);
    }
  }
  // what the call returns, for the caller's check of the answer's size before anything runs
  const returned = [
    ...wanted.map((n) => ({ name: n, shape: full.values[n]!.shape, datatype: full.values[n]!.datatype })),
    ...wrt.map((w) => {
      const one = plan.values[`grad:${w}`]!;
      return { name: `grad:${w}`, shape: sliced.some((s) => s.name === w) ? [...inputs[w]!.shape] : [N, ...one.shape], datatype: one.datatype };
    }),
  ];
  await opts.onPlan?.({ flops: full.flops * 3, peakBytes: Math.min(budget, peak), totalBytes: Math.min(budget, peak), outputs: returned });

  if (reason === undefined && N > 0 && chunk === N) {
    const g = composed(N, true);
    const r = (await core.evaluate(g.graph, inputs, [...wanted, ...Object.values(g.grads)], inner)).outputs;
    for (const w of wrt) gradients[w] = r[g.grads[w]!]!;
    const outputs: Tensors = nameMap();
    for (const n of wanted) outputs[n] = r[n]!;
    report.passes = 1;
    return finish(outputs);
  }

  const outputs = (await core.evaluate(c.graph, inputs, wanted, inner)).outputs;
  for (const w of wrt) {
    const s = sliced.find((x) => x.name === w);
    const one = plan.values[`grad:${w}`]!;
    const shape = s ? [...inputs[w]!.shape] : [N, ...one.shape];
    gradients[w] = { dtype: one.datatype, shape, data: allocArray(one.datatype, numel(shape)) };
  }
  /** Examples [start, start + count) of gradient w from a result laid out like the output. */
  const write = (w: string, start: number, t: Tensor): void => {
    const s = sliced.find((x) => x.name === w);
    if (s) writeAlong(gradients[w]!, t, s.axis, start);
    else (gradients[w]!.data as Float64Array).set(t.data as Float64Array, start * numel(t.shape.slice(1)));
  };
  const chunkOf = (start: number, count: number): Tensors => {
    const ins: Tensors = Object.assign(nameMap<Tensor>(), inputs);
    for (const s of sliced) ins[s.name] = along(inputs[s.name]!, s.axis, start, count);
    return ins;
  };

  if (reason === undefined && N > 0) {
    let passes = 0;
    for (let start = 0; start < N; start += chunk) {
      const count = Math.min(chunk, N - start);
      const g = composed(count, false);
      const r = (await core.evaluate(g.graph, chunkOf(start, count), Object.values(g.grads), inner)).outputs;
      passes++;
      for (const w of wrt) write(w, start, r[g.grads[w]!]!);
    }
    report.chunk = chunk;
    report.passes = passes + 1;
    return finish(outputs);
  }

  // The loop: one gradient pass per example.
  for (let i = 0; i < N; i++) {
    const r = (await core.evaluate(plan.grad, chunkOf(i, 1), wrt.map((w) => `grad:${w}`), inner)).outputs;
    for (const w of wrt) {
      const t = r[`grad:${w}`]!;
      write(w, i, sliced.some((s) => s.name === w) ? t : { ...t, shape: [1, ...t.shape] });
    }
  }
  report.vectorized = N === 0;
  report.chunk = N === 0 ? 0 : 1;
  report.passes = N + 1;
  if (reason !== undefined) report.reason = reason;
  return finish(outputs);
}
