/**
 * The generalized Jacobian (API.md `/v1/jacobian`): for every pair (of, wrt) a tensor of shape of.shape ++ wrt.shape.
 *
 * Built on the engine's symbolic transforms: reverse mode takes the VJP graph of one `of` and feeds it the standard
 * basis of cotangents (one row of the Jacobian each), forward mode takes the JVP graph of one `wrt` and feeds it the
 * standard basis of tangents (one column each). The seed-independent part (forward pass and local derivatives) runs
 * once (linear_plan.ts); the linear remainder is vectorized over chunks of basis vectors sized to the memory budget
 * (vmap.ts), and falls back to one pass per basis vector when some op of it has no batching rule.
 */
import type { ExecStats, JacobianMode, JacobianResult, RunOptions, Tensors } from '../engine.types.js';
import { GradserveError, fail, fmtBytes, fmtShape } from '../errors.js';
import type { Graph, ValueInfo } from '../graph/types.js';
import { BYTES_PER_ELEMENT, allocArray, isFloat, type DType } from '../tensor/dtype.js';
import { numel, type Tensor } from '../tensor/tensor.js';
import { engineCore } from './core.js';
import { concreteInputs, wantedOutputs } from '../autodiff/linear_plan.js';
import { innerOptions, planLinear, tensorSpecs, type EngineCore, type LinearPlan } from './linear.js';
import { Unbatchable, vmapGraph, type VmapResult } from '../autodiff/vmap.js';
import { nameMap, own } from '../graph/names.js';

/** Budget used when the caller sets none: a refusal beats an out-of-memory crash of the whole process. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 4 * 1024 ** 3;
/** Upper bound on one chunk's working set, so a generous budget does not turn into one giant pass. */
export const MAX_CHUNK_BYTES = 256 * 1024 ** 2;

export interface JacobianOptions {
  /** What the 413 suggests instead (default: vjp or jvp). */
  wayOut?: string;
  /** Name of the computed object in messages (default: "jacobian"). */
  what?: string;
  /** Largest chunk of basis vectors per pass; 1 disables batching (tests compare both paths). */
  maxChunk?: number;
}

/** How a Jacobian was computed, for tests and benchmarks. */
export interface JacobianReport {
  /** Per pair group (one `of` in reverse mode, one `wrt` in forward mode): vectorized or one pass per vector. */
  groups: { seed: string; basis: number; batched: boolean; chunk: number; passes: number; reason?: string }[];
}

function valueInfo(values: Record<string, ValueInfo>, name: string, field: string, i: number): ValueInfo {
  const v = Object.prototype.hasOwnProperty.call(values, name) ? values[name] : undefined;
  if (v === undefined) fail('UNKNOWN_VALUE', `${field}[${i}]: no value named "${name}" in the graph`, `${field}[${i}]`);
  return v;
}

export function requireFloat(v: ValueInfo, name: string, path: string, role: string): void {
  if (!isFloat(v.datatype)) {
    fail('NOT_DIFFERENTIABLE', `${role} "${name}" is ${v.datatype}: integer and bool values have no derivative`, path);
  }
}

/** The refusal shared by jacobian and hessian: bytes in binary units and the cheaper way out. */
export function tooLarge(what: string, pairs: string, resultBytes: number, workingBytes: number, budget: number, wayOut: string): never {
  const need = resultBytes > budget
    ? `needs ${fmtBytes(resultBytes)} for the result alone`
    : `needs ${fmtBytes(resultBytes)} for the result plus ${fmtBytes(workingBytes)} of working set`;
  throw new GradserveError('TOO_LARGE',
    `${what} ${pairs} ${need}, over the memory budget of ${fmtBytes(budget)}; ask for ${wayOut} instead, which never forms the full matrix`);
}

export async function jacobianWith(
  core: EngineCore,
  graph: Graph,
  inputs: Tensors,
  of: string[],
  wrt: string[],
  mode: JacobianMode = 'auto',
  opts: RunOptions = {},
  jopts: JacobianOptions = {},
): Promise<JacobianResult> {
  return (await jacobianWithReport(core, graph, inputs, of, wrt, mode, opts, jopts)).result;
}

export async function jacobianWithReport(
  core: EngineCore,
  graph: Graph,
  inputs: Tensors,
  of: string[],
  wrt: string[],
  mode: JacobianMode = 'auto',
  opts: RunOptions = {},
  jopts: JacobianOptions = {},
): Promise<{ result: JacobianResult; report: JacobianReport }> {
  // Shapes only: nothing runs and nothing big is allocated before the size guard.
  const shapes = core.shapes(graph, tensorSpecs(inputs));
  const ofInfo = of.map((n, i) => valueInfo(shapes.values, n, 'of', i));
  const wrtInfo = wrt.map((n, i) => valueInfo(shapes.values, n, 'wrt', i));
  wrtInfo.forEach((v, i) => requireFloat(v, wrt[i]!, `wrt[${i}]`, 'wrt'));
  ofInfo.forEach((v, i) => requireFloat(v, of[i]!, `of[${i}]`, 'of'));

  const ofTotal = ofInfo.reduce((s, v) => s + numel(v.shape), 0);
  const wrtTotal = wrtInfo.reduce((s, v) => s + numel(v.shape), 0);
  // Forward mode seeds tangents on graph inputs only; a Jacobian with respect to an intermediate value is reverse.
  const wrtNodes = wrt.some((w) => !Object.prototype.hasOwnProperty.call(graph.inputs ?? {}, w));
  const used: 'forward' | 'reverse' = mode === 'auto' ? (ofTotal < wrtTotal || wrtNodes ? 'reverse' : 'forward') : mode;

  const budget = opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES;
  let resultBytes = 0;
  let maxElems = 0;
  for (const o of ofInfo) {
    for (const w of wrtInfo) {
      const n = numel(o.shape) * numel(w.shape);
      resultBytes += n * BYTES_PER_ELEMENT[o.datatype];
      maxElems = Math.max(maxElems, n);
    }
  }
  const describe = (): string => {
    const list = (names: string[], infos: ValueInfo[]): string => names.map((n, i) => `${n} ${fmtShape(infos[i]!.shape)}`).join(', ');
    return `of ${list(of, ofInfo)} with respect to ${list(wrt, wrtInfo)}`;
  };
  const what = jopts.what ?? 'jacobian';
  const wayOut = jopts.wayOut ?? (used === 'reverse' ? '`vjp` (one row per cotangent) or `jvp`' : '`jvp` (one column per tangent) or `vjp`');
  // The forward pass stays alive beside the result while the derivative passes run.
  const working = resultBytes + shapes.peakBytes;
  if (working > budget) tooLarge(what, describe(), resultBytes, shapes.peakBytes, budget, wayOut);
  if (opts.maxTensorElements !== undefined && maxElems > opts.maxTensorElements) {
    fail('TOO_LARGE', `${what} ${describe()} has a block of ${maxElems} elements, over the limit of ${opts.maxTensorElements}; ask for ${wayOut} instead`);
  }
  if (opts.onPlan) {
    // Admission reserves before anything runs: the result, the forward pass, and chunks of derivative passes (each
    // about a forward pass per basis vector, capped like the chunks themselves).
    const basisMax = Math.max(0, ...(used === 'reverse' ? ofInfo : wrtInfo).map((v) => numel(v.shape)));
    const peakBytes = Math.min(budget, working + Math.min(MAX_CHUNK_BYTES, basisMax * shapes.peakBytes));
    const returned = wantedOutputs(graph, of).flatMap((name) => {
      const v = own(shapes.values, name);
      return v === undefined ? [] : [{ name, shape: v.shape, datatype: v.datatype }];
    });
    ofInfo.forEach((o, i) => wrtInfo.forEach((w, j) => {
      returned.push({ name: `jacobian:${of[i]!}:${wrt[j]!}`, shape: [...o.shape, ...w.shape], datatype: o.datatype });
    }));
    await opts.onPlan({ flops: shapes.flops * 3 * Math.min(ofTotal, wrtTotal), peakBytes, totalBytes: peakBytes, outputs: returned });
  }

  const stats: ExecStats = { nodes: 0, flops: 0, bytes: 0 };
  const inner = innerOptions(opts, stats);
  const wanted = wantedOutputs(graph, of);
  // Blocks are allocated on first write, so a block that one pass produces whole is adopted without a copy.
  const jac: Record<string, Record<string, Tensor | undefined>> = nameMap();
  for (const o of of) {
    jac[o] = nameMap();
    for (const w of wrt) jac[o]![w] = undefined;
  }
  const blockOf = (i: number, j: number): Tensor => {
    const cur = jac[of[i]!]![wrt[j]!];
    if (cur) return cur;
    const dtype = ofInfo[i]!.datatype;
    const t: Tensor = { dtype, shape: [...ofInfo[i]!.shape, ...wrtInfo[j]!.shape], data: allocArray(dtype, numel(ofInfo[i]!.shape) * numel(wrtInfo[j]!.shape)) };
    jac[of[i]!]![wrt[j]!] = t;
    return t;
  };

  const pinned = concreteInputs(graph, inputs);
  const report: JacobianReport = { groups: [] };
  let primal: Tensors = nameMap();
  const groups = used === 'reverse' ? of : wrt;
  for (let gi = 0; gi < groups.length; gi++) {
    const name = groups[gi]!;
    const seed = used === 'reverse' ? `cotangent:${name}` : `tangent:${name}`;
    const derived = used === 'reverse'
      ? core.transform(pinned, { transform: 'vjp', of: [name], wrt })
      : core.transform(pinned, { transform: 'jvp', wrt: [name], of });
    const plan = await planLinear(core, pinned, derived, [seed], inputs, gi === 0 ? wanted : [], inner);
    if (gi === 0) primal = plan.primal;
    const seedInfo = used === 'reverse' ? ofInfo[gi]! : wrtInfo[gi]!;
    // What the passes may use beside the result: the primal values they read plus one chunk's working set.
    const room = budget - resultBytes;
    const refuse = (passBytes: number): never => tooLarge(what, describe(), resultBytes, passBytes, budget, wayOut);
    const layout = used === 'reverse' ? 'rows' : 'cols';
    const group = await runBasis(core, plan, seed, seedInfo, layout, room, refuse, jopts.maxChunk ?? Infinity, inner, (start, count, outName, t, constant) => {
      // Outputs are grad:<wrt> (reverse: rows [start, start+count) of J[name][wrt], laid out [count, N_wrt]) or
      // tangent:<of> (forward: columns of J[of][name], laid out [N_of, count]).
      const i = used === 'reverse' ? gi : of.indexOf(outName.slice('tangent:'.length));
      const j = used === 'reverse' ? wrt.indexOf(outName.slice('grad:'.length)) : gi;
      const nOf = numel(ofInfo[i]!.shape);
      const nWrt = numel(wrtInfo[j]!.shape);
      const src = t.data as Float64Array;
      if (constant) {
        if (src.every((v) => v === 0)) return; // blocks start zeroed
        const dst = blockOf(i, j).data as Float64Array;
        for (let k = start; k < start + count; k++) {
          if (used === 'reverse') dst.set(src, k * nWrt);
          else for (let r = 0; r < nOf; r++) dst[r * nWrt + k] = src[r]!;
        }
        return;
      }
      const whole = used === 'reverse' ? count === nOf : count === nWrt;
      if (whole && jac[of[i]!]![wrt[j]!] === undefined && t.dtype === ofInfo[i]!.datatype) {
        jac[of[i]!]![wrt[j]!] = { dtype: t.dtype, shape: [...ofInfo[i]!.shape, ...wrtInfo[j]!.shape], data: t.data };
        return;
      }
      const dst = blockOf(i, j).data as Float64Array;
      if (used === 'reverse') dst.set(src, start * nWrt);
      else for (let r = 0; r < nOf; r++) dst.set(src.subarray(r * count, (r + 1) * count), r * nWrt + start);
    });
    report.groups.push(group);
  }

  const missing = wanted.filter((n) => !Object.hasOwn(primal, n));
  let outputs: Tensors = nameMap();
  if (missing.length > 0) outputs = (await core.evaluate(graph, inputs, missing, inner)).outputs;
  const ordered: Tensors = nameMap();
  for (const n of wanted) ordered[n] = own(primal, n) ?? own(outputs, n)!;
  opts.onExecuted?.(stats);
  for (let i = 0; i < of.length; i++) for (let j = 0; j < wrt.length; j++) blockOf(i, j);
  return { result: { outputs: ordered, jacobians: jac as Record<string, Tensors>, mode: used }, report };
}

/** Largest chunk whose batched values all stay within maxTensorElements (the per-vector pass would pass the check). */
export function chunkCap(values: Record<string, ValueInfo>, opts: RunOptions): number {
  if (opts.maxTensorElements === undefined) return Infinity;
  const biggest = Math.max(1, ...Object.values(values).map((v) => numel(v.shape)));
  return Math.max(1, Math.floor(opts.maxTensorElements / biggest));
}

/** Standard basis vectors [start, start + count) of a value with `info`'s shape, stacked on a leading axis. */
function basisChunk(info: ValueInfo, start: number, count: number, batched: boolean): Tensor {
  const n = numel(info.shape);
  const data = allocArray(info.datatype, n * count) as Float64Array;
  for (let k = 0; k < count; k++) data[k * n + start + k] = 1;
  return { dtype: info.datatype, shape: batched ? [count, ...info.shape] : [...info.shape], data };
}

type ChunkWriter = (start: number, count: number, output: string, t: Tensor, constant: boolean) => void;

/**
 * Runs the linear graph of `plan` on basis vectors [0, basis) and hands each output to `write` in the Jacobian's own
 * layout for the chunk: 'rows' [count, ...out] (reverse mode), 'cols' [N_out, count] (forward mode; the vectorized
 * graph ends in a transpose so the kernel, not a JS loop, reorders the numbers).
 */
async function runBasis(
  core: EngineCore,
  plan: LinearPlan,
  seed: string,
  seedInfo: ValueInfo,
  layout: 'rows' | 'cols',
  roomBytes: number,
  refuse: (passBytes: number) => never,
  maxChunk: number,
  opts: RunOptions,
  write: ChunkWriter,
): Promise<JacobianReport['groups'][number]> {
  const basis = numel(seedInfo.shape);
  const writeConstants = (start: number, count: number): void => {
    for (const o of plan.outputs) {
      const c = plan.constant[o];
      if (c !== undefined) write(start, count, o, c, true);
    }
  };
  if (plan.graph.outputs!.length === 0) {
    writeConstants(0, basis);
    return { seed, basis, batched: false, chunk: 1, passes: 0 };
  }
  const specs: Record<string, ValueInfo> = { ...tensorSpecs(plan.fixed), [seed]: { shape: [...seedInfo.shape], datatype: seedInfo.datatype as DType } };
  const single = core.shapes(plan.graph, specs);
  const fixedBytes = Object.values(plan.fixed).reduce((s, t) => s + t.data.byteLength, 0);
  // Even one vector per pass must fit beside the result: a chunked Jacobian never goes over the budget.
  if (single.peakBytes > roomBytes) refuse(single.peakBytes);
  const perVector = Math.max(1, single.peakBytes - fixedBytes);
  const availBytes = Math.min(MAX_CHUNK_BYTES, roomBytes - fixedBytes);
  let chunk = Math.max(1, Math.min(basis, maxChunk, Math.floor(availBytes / perVector), chunkCap(single.values, opts)));
  writeConstants(0, basis);

  let reason: string | undefined;
  if (chunk > 1) {
    try {
      const build = (count: number) => withLayout(vmapGraph(plan.graph, [seed], single.values, count), single.values, count, layout);
      for (;;) {
        const vm = build(chunk);
        const batchedShapes = core.shapes(vm.graph, { ...specs, [seed]: { shape: [chunk, ...seedInfo.shape], datatype: seedInfo.datatype } });
        if (batchedShapes.peakBytes - fixedBytes > availBytes && chunk > 1) {
          chunk = Math.max(1, Math.floor(chunk / 2));
          continue;
        }
        let passes = 0;
        for (let start = 0; start < basis; start += chunk) {
          const count = Math.min(chunk, basis - start);
          const g = count === chunk ? vm : build(count);
          const res = await core.evaluate(g.graph, { ...plan.fixed, [seed]: basisChunk(seedInfo, start, count, true) }, g.outputs, opts);
          passes++;
          for (const [o, v] of Object.entries(g.names)) {
            const t = res.outputs[v]!;
            if (g.batched[o]) write(start, count, o, t, false);
            else write(start, count, o, t, true);
          }
        }
        return { seed, basis, batched: true, chunk, passes };
      }
    } catch (e) {
      // A missing batching rule, or a rule the engine's shape check rejects, only costs speed.
      if (!(e instanceof Unbatchable) && !(e instanceof GradserveError && e.code !== 'CANCELLED' && e.code !== 'DEADLINE_EXCEEDED' && e.code !== 'TOO_LARGE')) throw e;
      reason = e.message;
    }
  }
  const linearOutputs = plan.graph.outputs!.filter((o) => plan.constant[o] === undefined);
  for (let k = 0; k < basis; k++) {
    const res = await core.evaluate(plan.graph, { ...plan.fixed, [seed]: basisChunk(seedInfo, k, 1, false) }, undefined, opts);
    for (const o of linearOutputs) write(k, 1, o, res.outputs[o]!, false);
  }
  const out: JacobianReport['groups'][number] = { seed, basis, batched: false, chunk: 1, passes: basis };
  if (reason !== undefined) out.reason = reason;
  return out;
}

/**
 * The vectorized graph with each batched output put in the chunk layout ('cols' appends reshape + transpose), plus
 * which value to read for each original output.
 */
function withLayout(vm: VmapResult, shapes: Record<string, ValueInfo>, count: number, layout: 'rows' | 'cols'):
  { graph: Graph; outputs: string[]; names: Record<string, string>; batched: Record<string, boolean> } {
  const names: Record<string, string> = {};
  const nodes = [...vm.graph.nodes];
  const taken = new Set([...nodes.map((n) => n.name), ...Object.keys(vm.graph.inputs ?? {}), ...Object.keys(vm.graph.constants ?? {})]);
  for (const o of vm.graph.outputs ?? []) {
    if (layout === 'rows' || !vm.batchedOutputs[o]) {
      names[o] = o;
      continue;
    }
    let base = `${o}::cols`;
    while (taken.has(base)) base += '_';
    taken.add(base);
    const n = numel(shapes[o]!.shape);
    nodes.push({ name: `${base}:flat`, op: 'reshape', inputs: [o], attrs: { shape: [count, n] } });
    nodes.push({ name: base, op: 'transpose', inputs: [`${base}:flat`], attrs: { perm: [1, 0] } });
    names[o] = base;
  }
  const outputs = Object.values(names);
  return { graph: { ...vm.graph, nodes, outputs }, outputs, names, batched: vm.batchedOutputs };
}

/** The library and engine entry (Engine.jacobian). */
export async function jacobian(graph: Graph, inputs: Tensors, of: string[], wrt: string[], mode?: JacobianMode, opts?: RunOptions): Promise<JacobianResult> {
  return jacobianWith(engineCore, graph, inputs, of, wrt, mode, opts);
}
