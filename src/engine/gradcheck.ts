/**
 * Gradient check (API.md `/v1/gradcheck`): the analytic gradient against central differences, both in FP64. An FP32
 * graph is promoted first (declared inputs, constants, `cast`/`one_hot` target datatypes and FP32 input tensors become
 * FP64), because FP32 central differences carry errors near 1e-3 that would drown the bugs the check looks for.
 * Pass rule per element, PyTorch's: |a - n| <= atol + rtol * |n|; relative error |a - n| / max(|n|, atol).
 */
import type { GradcheckFigures, GradcheckOptions, GradcheckResult, RunOptions, Tensors } from '../engine.types.js';
import { GradserveError, fail } from '../errors.js';
import { DEFAULT_MEMORY_BUDGET_BYTES, MAX_CHUNK_BYTES, chunkCap } from './jacobian.js';
import { Unbatchable, vmapGraph } from '../autodiff/vmap.js';
import { engineCore } from './core.js';
import type { Graph, InputSpec, NodeSpec, WireTensor } from '../graph/types.js';
import { getOp } from '../ops/registry.js';
import { parseDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkScalarOf, checkWrt } from './hessian.js';
import { innerOptions, tensorSpecs, type EngineCore } from './linear.js';
import { nameMap } from '../graph/names.js';

export const GRADCHECK_DEFAULTS = { eps: 1e-6, atol: 1e-5, rtol: 1e-3 } as const;

const isFP32 = (d: string | undefined): boolean => d !== undefined && parseDType(d) === 'FP32';

function promoteConstant(c: WireTensor): WireTensor {
  // A constant without a datatype is FP32 by the shorthand rule.
  if (c.datatype !== undefined && !isFP32(c.datatype)) return c;
  if (c.b64 === undefined) return { ...c, datatype: 'FP64' };
  const bytes = Buffer.from(c.b64, 'base64');
  const f32 = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength - (bytes.byteLength % 4)));
  const out: WireTensor = { datatype: 'FP64', b64: Buffer.from(Float64Array.from(f32).buffer).toString('base64') };
  if (c.shape !== undefined) out.shape = c.shape;
  return out;
}

/** A node whose op takes its output datatype from an attribute (`OpDef.datatypeAttr`) gets FP64 where it said FP32. */
function promoteNode(n: NodeSpec): NodeSpec {
  const attr = getOp(n.op)?.datatypeAttr;
  if (attr === undefined) return n;
  const attrs = n.attrs ?? {};
  const value = attrs[attr.name] === undefined ? attr.default : attrs[attr.name];
  if (typeof value !== 'string' || !isFP32(value)) return n;
  return { ...n, attrs: { ...attrs, [attr.name]: 'FP64' } };
}

/** The same graph computing in FP64 wherever it computed in FP32. */
export function promoteGraph(graph: Graph): Graph {
  const inputs: Record<string, InputSpec> = {};
  for (const [k, spec] of Object.entries(graph.inputs ?? {})) inputs[k] = isFP32(spec.datatype) ? { ...spec, datatype: 'FP64' } : spec;
  const constants: Record<string, WireTensor> = {};
  for (const [k, c] of Object.entries(graph.constants ?? {})) constants[k] = promoteConstant(c);
  const out: Graph = { ...graph, nodes: graph.nodes.map(promoteNode) };
  if (graph.inputs !== undefined) out.inputs = inputs;
  if (graph.constants !== undefined) out.constants = constants;
  return out;
}

export function promoteInputs(inputs: Tensors): Tensors {
  const out: Tensors = nameMap();
  for (const [k, t] of Object.entries(inputs)) {
    out[k] = t.dtype === 'FP32' ? { dtype: 'FP64', shape: [...t.shape], data: Float64Array.from(t.data as Float32Array) } : t;
  }
  return out;
}

function checkOption(name: string, v: number | undefined, dflt: number, allowZero: boolean): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    fail('INVALID_REQUEST', `${name} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${v}`, name);
  }
  return v;
}

/** The nodes `of` depends on, and only those: the rest would only cost time (and might not vectorize). */
function pruneTo(graph: Graph, of: string): Graph {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const keep = new Set<string>();
  const stack = [of];
  while (stack.length > 0) {
    const v = stack.pop()!;
    const n = byName.get(v);
    if (!n || keep.has(v)) continue;
    keep.add(v);
    stack.push(...n.inputs);
  }
  return { ...graph, nodes: graph.nodes.filter((n) => keep.has(n.name)), outputs: [of] };
}

/**
 * Central differences of `of` along every element of input `w`. The forward graph is vectorized over a batch of
 * perturbed copies of `w` (+eps rows then -eps rows) so a chunk of elements costs one pass; graphs with an op that has
 * no batching rule take two passes per element.
 */
async function numericGradient(
  core: EngineCore, graph: Graph, inputs: Tensors, of: string, w: string, eps: number, budget: number, opts: RunOptions,
): Promise<Float64Array> {
  const base = inputs[w]!;
  const x0 = base.data as Float64Array;
  const n = x0.length;
  const out = new Float64Array(n);
  const g = pruneTo(graph, of);
  const specs = tensorSpecs(inputs);
  const single = core.shapes(g, specs);
  const chunk = Math.max(1, Math.min(n, Math.floor(budget / Math.max(1, 2 * single.peakBytes)), Math.floor(chunkCap(single.values, opts) / 2)));
  if (chunk > 1) {
    try {
      for (let start = 0; start < n; start += chunk) {
        const count = Math.min(chunk, n - start);
        const vm = vmapGraph(g, [w], single.values, 2 * count);
        const data = new Float64Array(2 * count * n);
        for (let k = 0; k < count; k++) {
          data.set(x0, k * n);
          data.set(x0, (count + k) * n);
          data[k * n + start + k] = x0[start + k]! + eps;
          data[(count + k) * n + start + k] = x0[start + k]! - eps;
        }
        const batch: Tensor = { dtype: 'FP64', shape: [2 * count, ...base.shape], data };
        const res = (await core.evaluate(vm.graph, { ...inputs, [w]: batch }, [of], opts)).outputs[of]!;
        for (let k = 0; k < count; k++) out[start + k] = (Number(res.data[k]) - Number(res.data[count + k])) / (2 * eps);
      }
      return out;
    } catch (e) {
      if (!(e instanceof Unbatchable) && !(e instanceof GradserveError && (e.code === 'SHAPE_MISMATCH' || e.code === 'INVALID_ATTRS' || e.code === 'DATATYPE_MISMATCH'))) throw e;
    }
  }
  const data = Float64Array.from(x0);
  const xs = { ...inputs, [w]: { dtype: 'FP64', shape: [...base.shape], data } as Tensor };
  const f = async (): Promise<number> => Number((await core.evaluate(g, xs, [of], opts)).outputs[of]!.data[0]);
  for (let i = 0; i < n; i++) {
    data[i] = x0[i]! + eps;
    const fp = await f();
    data[i] = x0[i]! - eps;
    const fm = await f();
    data[i] = x0[i]!;
    out[i] = (fp - fm) / (2 * eps);
  }
  return out;
}

/** Largest of the values, NaN if any is NaN (a NaN error must not read as a small one). */
function maxNaN(a: number, b: number): number {
  return Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b);
}

export async function gradcheckWith(
  core: EngineCore, graph: Graph, inputs: Tensors, of: string, wrt: string[], check: GradcheckOptions = {}, opts: RunOptions = {},
): Promise<GradcheckResult> {
  const eps = checkOption('eps', check.eps, GRADCHECK_DEFAULTS.eps, false);
  const atol = checkOption('atol', check.atol, GRADCHECK_DEFAULTS.atol, true);
  const rtol = checkOption('rtol', check.rtol, GRADCHECK_DEFAULTS.rtol, true);
  const shapes = core.shapes(graph, tensorSpecs(inputs));
  checkScalarOf(shapes.values, of);
  checkWrt(shapes.values, wrt);
  wrt.forEach((w, i) => {
    if (!Object.prototype.hasOwnProperty.call(inputs, w)) {
      fail('INVALID_REQUEST', `wrt[${i}]: gradcheck perturbs graph inputs, and "${w}" is not one`, `wrt[${i}]`);
    }
  });

  const g64 = promoteGraph(graph);
  const x64 = promoteInputs(inputs);
  const stats = { nodes: 0, flops: 0, bytes: 0 };
  const inner = innerOptions(opts, stats);
  const analytic = (await core.grad(g64, x64, of, wrt, opts)).gradients;
  const perInput: Record<string, GradcheckFigures> = nameMap();
  let all: GradcheckFigures = { ok: true, maxAbsError: 0, maxRelError: 0 };
  const budget = Math.min(MAX_CHUNK_BYTES, opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES);
  for (const w of [...new Set(wrt)]) {
    const numeric = await numericGradient(core, g64, x64, of, w, eps, budget, inner);
    const a = analytic[w]!.data as Float64Array;
    const fig: GradcheckFigures = { ok: true, maxAbsError: 0, maxRelError: 0 };
    for (let i = 0; i < numeric.length; i++) {
      const n = numeric[i]!;
      const err = Math.abs(Number(a[i]) - n);
      if (!(err <= atol + rtol * Math.abs(n))) fig.ok = false;
      fig.maxAbsError = maxNaN(fig.maxAbsError, err);
      fig.maxRelError = maxNaN(fig.maxRelError, err / Math.max(Math.abs(n), atol));
    }
    perInput[w] = fig;
    all = { ok: all.ok && fig.ok, maxAbsError: maxNaN(all.maxAbsError, fig.maxAbsError), maxRelError: maxNaN(all.maxRelError, fig.maxRelError) };
  }
  opts.onExecuted?.(stats);
  return { ...all, perInput };
}

/** The library and engine entry (Engine.gradcheck). */
export async function gradcheck(graph: Graph, inputs: Tensors, of: string, wrt: string[], check?: GradcheckOptions, opts?: RunOptions): Promise<GradcheckResult> {
  return gradcheckWith(engineCore, graph, inputs, of, wrt, check, opts);
}
