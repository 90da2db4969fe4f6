/**
 * ONNX -> gradserve (API.md "Models by reference and imported models", import rules). Graph inputs, outputs and
 * parameters keep their ONNX names; floating-point initializers become parameters (graph inputs with stored values,
 * FP16/BF16 widened to FP32), integer and bool initializers constants. Each node is mapped by its op's handler
 * (ops_*.ts), folded at import when it only computes shapes. Every node that cannot be mapped is judged and reported
 * (UNSUPPORTED_MODEL, one `graph.node[<i>]` item each); nothing is half-imported.
 */
import { GradserveError, type ErrorItem } from '../errors.js';
import type { Tensors } from '../engine.types.js';
import type { Graph, InputSpec, NodeSpec } from '../graph/types.js';
import type { Tensor } from '../tensor/tensor.js';
import { encodeTensor } from '../tensor/wire.js';
import { ImportContext, type ImportOptions, OnnxNode, Poisoned, type Val, Unsupported, staticFromTensor, tensorOf } from './context.js';
import { decodeModel, int64, type ModelProto, type ValueInfoProto } from './decode.js';
import { fusePatterns } from './fuse.js';
import type { Handler } from './handlers.js';
import { ELEMENTWISE } from './ops_elementwise.js';
import { NN_OPS } from './ops_nn.js';
import { SHAPE_OPS } from './ops_shape.js';
import { EXACT, TensorImportError, tensorFromProto, typeName } from './tensors.js';

export type { ImportOptions } from './context.js';

/** Every ONNX op the importer maps, by op_type (default domain). */
export const HANDLERS: Readonly<Record<string, Handler>> = { ...ELEMENTWISE, ...SHAPE_OPS, ...NN_OPS };

/** ONNX ops with no gradserve counterpart yet, and why (the rest of the unmapped ones are "not supported"). */
export const UNMAPPED_REASONS: Readonly<Record<string, string>> = {
  Loop: 'control flow (a graph attribute) cannot be expressed',
  If: 'control flow (a graph attribute) cannot be expressed',
  Scan: 'control flow (a graph attribute) cannot be expressed',
  NonZero: 'its output shape depends on the data',
  Unique: 'its output shape depends on the data',
  Compress: 'its output shape depends on the data',
  NonMaxSuppression: 'its output shape depends on the data',
  RandomNormal: 'random values have no derivative and no reproducible result',
  RandomUniform: 'random values have no derivative and no reproducible result',
  RandomNormalLike: 'random values have no derivative and no reproducible result',
  RandomUniformLike: 'random values have no derivative and no reproducible result',
  Multinomial: 'random values have no derivative and no reproducible result',
  Bernoulli: 'random values have no derivative and no reproducible result',
};

/**
 * The default ONNX domain's opsets the importer knows; 13 and later are what PyTorch's exporter writes. Older opsets
 * import where the model's ops did not change since (Elu-6 is today's Elu); the handlers read the old forms they know
 * (Softmax before 13, attribute axes, ...).
 */
export const OPSET_MIN = 1;
export const OPSET_MAX = 18;

export interface ImportResult {
  graph: Graph;
  /** Stored values of the parameters (the floating-point initializers), keyed by graph input name. */
  parameters: Tensors;
  /** What the import changed that a user should know (widened weights). */
  notes: string[];
}

function unsupportedModel(errors: ErrorItem[]): never {
  const shown = errors.slice(0, 3).map((e) => e.message).join('; ');
  const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : '';
  throw new GradserveError('UNSUPPORTED_MODEL', `the model uses what gradserve cannot express: ${shown}${more}`, { errors });
}

function defaultOpset(model: ModelProto): number {
  const errors: ErrorItem[] = [];
  let version: number | undefined;
  for (const [i, o] of (model.opset_import ?? []).entries()) {
    const domain = o.domain ?? '';
    if (domain === '' || domain === 'ai.onnx') {
      version = int64(o.version);
      if (version < OPSET_MIN || version > OPSET_MAX) {
        errors.push({ path: `opset_import[${i}]`, message: `opset ${version} of the default domain; gradserve imports opsets ${OPSET_MIN} to ${OPSET_MAX} (export with opset_version=13 or later)` });
      }
    }
  }
  if (errors.length > 0) unsupportedModel(errors);
  // IR versions before 3 had no opset_import: they are opset 1, older than anything supported.
  if (version === undefined) unsupportedModel([{ path: 'opset_import', message: 'the model imports no opset of the default ONNX domain' }]);
  return version;
}

function declaredInput(cx: ImportContext, vi: ValueInfoProto, path: string, dims: Record<string, number>, errors: ErrorItem[]): Val | undefined {
  const name = vi.name ?? '';
  const tt = vi.type?.tensor_type;
  if (tt === undefined) {
    errors.push({ path, message: `input ${name}: only tensors can be imported (not sequences, maps or optionals)` });
    return undefined;
  }
  const dtype = EXACT[tt.elem_type ?? 0];
  if (dtype === undefined) {
    errors.push({ path, message: `input ${name}: ${typeName(tt.elem_type)} inputs cannot be imported (gradserve has FP32, FP64, INT32, INT64, BOOL)` });
    return undefined;
  }
  if (tt.shape === undefined) {
    errors.push({ path, message: `input ${name}: its shape (at least its rank) must be declared` });
    return undefined;
  }
  const shape = (tt.shape.dim ?? []).map((d) => {
    if (d.dim_value !== undefined && int64(d.dim_value) > 0) return int64(d.dim_value);
    if (d.dim_param !== undefined && d.dim_param !== '' && Object.hasOwn(dims, d.dim_param)) return dims[d.dim_param]!;
    if (d.dim_value !== undefined && int64(d.dim_value) === 0 && d.dim_param === undefined) return 0;
    return null;
  });
  return { kind: 'dynamic', name, dtype, shape };
}

/** Imports the bytes of an .onnx file: INVALID_MODEL, UNSUPPORTED_MODEL, or the graph with its parameters. */
export function importOnnx(bytes: Uint8Array, options: ImportOptions = {}): ImportResult {
  const model = decodeModel(bytes);
  const opset = defaultOpset(model);
  const g = model.graph!;
  const dims = options.dims ?? {};
  const cx = new ImportContext(opset);
  const errors: ErrorItem[] = [];
  const notes: string[] = [];

  // Every ONNX name is reserved first, so the intermediate values the handlers add never take one.
  for (const t of g.initializer ?? []) cx.claim(t.name ?? '');
  for (const vi of g.input ?? []) cx.claim(vi.name ?? '');
  for (const n of g.node ?? []) for (const o of n.output ?? []) cx.claim(o);

  const inputs: Record<string, InputSpec> = {};
  const parameters: Tensors = {};
  const initNames = new Set<string>();
  for (const [i, t] of (g.initializer ?? []).entries()) {
    const name = t.name ?? '';
    initNames.add(name);
    let tensor: Tensor;
    try {
      const r = tensorFromProto(t);
      tensor = r.tensor;
      if (r.widenedFrom !== undefined) notes.push(`initializer ${name}: ${r.widenedFrom} widened to ${tensor.dtype}`);
    } catch (e) {
      if (!(e instanceof TensorImportError)) throw e;
      errors.push({ path: `graph.initializer[${i}]`, message: `initializer ${name}: ${e.message}` });
      cx.poisoned.add(name);
      continue;
    }
    if (tensor.dtype === 'FP32' || tensor.dtype === 'FP64') {
      parameters[name] = tensor;
      inputs[name] = { shape: [...tensor.shape], datatype: tensor.dtype };
      cx.values.set(name, { kind: 'dynamic', name, dtype: tensor.dtype, shape: [...tensor.shape] });
    } else {
      const v = staticFromTensor(tensor);
      v.wireName = name;
      cx.values.set(name, v);
    }
  }
  const graphInputs: string[] = [];
  for (const [i, vi] of (g.input ?? []).entries()) {
    const name = vi.name ?? '';
    if (initNames.has(name)) continue;
    const fixed = options.staticInputs?.[name];
    if (fixed !== undefined) {
      cx.values.set(name, staticFromTensor(fixed));
      continue;
    }
    const v = declaredInput(cx, vi, `graph.input[${i}]`, dims, errors);
    if (v === undefined) {
      cx.poisoned.add(name);
      continue;
    }
    cx.values.set(name, v);
    inputs[name] = { shape: v.shape, datatype: v.dtype };
    graphInputs.push(name);
  }

  for (const { proto, index: i } of fusePatterns(g)) {
    const node = new OnnxNode(proto, i, opset);
    cx.current = node;
    const mark = cx.nodes.length;
    const fail = (why: string): void => {
      errors.push({ path: `graph.node[${i}]`, message: `${node.op} node ${node.name || node.outputs[0] || `#${i}`}: ${why}` });
    };
    let outs: (Val | undefined)[] | undefined;
    const domain = proto.domain ?? '';
    if (domain !== '' && domain !== 'ai.onnx') {
      fail(`domain "${domain}" is not the default ONNX domain`);
    } else {
      const handler = HANDLERS[node.op];
      if (handler === undefined) fail(UNMAPPED_REASONS[node.op] ?? 'not supported by the importer');
      else {
        try {
          outs = handler(cx, node);
        } catch (e) {
          if (e instanceof Unsupported) fail(e.message);
          else if (!(e instanceof Poisoned)) throw e;
        }
      }
    }
    if (outs === undefined) {
      cx.nodes.length = mark;
      for (const o of node.outputs) if (o !== '') cx.poisoned.add(o);
      continue;
    }
    node.outputs.forEach((o, k) => {
      if (o === '') return;
      const v = outs![k];
      if (v === undefined) cx.poisoned.add(o);
      else cx.values.set(o, v);
    });
  }

  const outputs: string[] = [];
  for (const [i, vi] of (g.output ?? []).entries()) {
    const name = vi.name ?? '';
    const v = cx.values.get(name);
    if (v === undefined) {
      if (!cx.poisoned.has(name)) errors.push({ path: `graph.output[${i}]`, message: `output ${name} is produced by no node` });
      continue;
    }
    if (v.kind === 'static' && tensorOf(v) === undefined) {
      errors.push({ path: `graph.output[${i}]`, message: `output ${name} depends on a symbolic dimension of an input; fix it with ?dims=<name>:<size>` });
      continue;
    }
    // An output must be a value of that name: a folded constant or a renamed value gets an identity node.
    if (v.kind === 'static' || v.name !== name) {
      try {
        cx.current = undefined;
        cx.emit('identity', [v], {}, name);
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        errors.push({ path: `graph.output[${i}]`, message: `output ${name}: ${e.message}` });
        continue;
      }
    }
    outputs.push(name);
  }
  if (errors.length > 0) unsupportedModel(errors);

  const { graph, live } = prune({ inputs: orderInputs(inputs, graphInputs), constants: cx.constants, nodes: cx.nodes, outputs });
  for (const name of Object.keys(parameters)) {
    if (live.has(name)) continue;
    delete parameters[name];
    delete graph.inputs![name];
  }

  // Deeply frozen: the engine then hashes it (constants included) once, by identity, not on every call.
  return { graph: deepFreeze(graph), parameters, notes };
}

function deepFreeze<T>(root: T): T {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || Object.isFrozen(v) || ArrayBuffer.isView(v)) continue;
    Object.freeze(v);
    for (const x of Object.values(v)) if (typeof x === 'object' && x !== null) stack.push(x);
  }
  return root;
}

function orderInputs(all: Record<string, InputSpec>, first: string[]): Record<string, InputSpec> {
  const out: Record<string, InputSpec> = {};
  for (const n of first) out[n] = all[n]!;
  for (const [n, s] of Object.entries(all)) if (!Object.hasOwn(out, n)) out[n] = s;
  return out;
}

/**
 * Keeps the nodes and constants the outputs need. Graph inputs all stay (a caller may send them), parameters only when
 * used: an initializer that only fed folded shape arithmetic is not a weight.
 */
function prune(graph: Graph): { graph: Graph; live: Set<string> } {
  const byName = new Map<string, NodeSpec>(graph.nodes.map((n) => [n.name, n]));
  const live = new Set<string>();
  const stack = [...(graph.outputs ?? [])];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (live.has(v)) continue;
    live.add(v);
    const n = byName.get(v);
    if (n !== undefined) stack.push(...n.inputs);
  }
  const nodes = graph.nodes.filter((n) => live.has(n.name));
  const constants: Record<string, NonNullable<Graph['constants']>[string]> = {};
  for (const [k, c] of Object.entries(graph.constants ?? {})) if (live.has(k)) constants[k] = c;
  const out: Graph = { inputs: graph.inputs ?? {}, nodes, outputs: graph.outputs ?? [] };
  if (Object.keys(constants).length > 0) out.constants = constants;
  return { graph: out, live };
}

/** The parameters of an import as wire tensors (`?weights=b64`). */
export function encodeParameters(parameters: Tensors): Record<string, ReturnType<typeof encodeTensor>> {
  const out: Record<string, ReturnType<typeof encodeTensor>> = {};
  for (const [k, t] of Object.entries(parameters)) out[k] = encodeTensor(t, 'b64');
  return out;
}
