/**
 * The model repository (API.md "Models by reference and imported models"): a folder where a model is
 * `<name>.json` (a graph, or `{"graph": Graph, "parameters"?: [names]}`) with its weights in `<name>.safetensors`
 * beside it, or `<name>.onnx` (imported by src/onnx/). Every model is loaded and checked at start and again when its
 * files change (their sizes and modification times are compared on each use). A model that fails to load is logged by
 * name and answers MODEL_UNAVAILABLE with the load error; the others are not affected.
 *
 * Weights are read once into one buffer per file and held as views of it, shared by every request: a request that
 * leaves a parameter out gets the stored tensor itself, never a copy.
 */
import { watch as watchDir, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { GradserveError } from '../errors.js';
import type { Tensors } from '../engine.types.js';
import { nameMap } from '../graph/names.js';
import type { Graph as GraphT } from '../graph/types.js';
import { importOnnx } from '../onnx/import.js';
import { parseDType, type DType } from '../tensor/dtype.js';
import { readSafetensors } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { fmtSymShape } from '../tensor/shape.js';
import { Graph } from './schemas.js';
import { formatPath } from './body.js';

const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const KINDS = ['.json', '.safetensors', '.onnx'] as const;

export interface ParameterInfo {
  name: string;
  datatype: DType;
  shape: number[];
}

/** A loaded model: its graph (deeply frozen, so the engine hashes it once) and its stored parameter values. */
export interface Model {
  name: string;
  graph: GraphT;
  /** Stored values of the parameters, keyed by input name; a request may override any of them. */
  parameters: Readonly<Tensors>;
  parameterInfo: ParameterInfo[];
  /** What loading changed and the caller should know (FP16 weights widened to FP32, ...). */
  notes: string[];
}

/** What the repository logs (a pino logger fits). */
export interface ModelLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

type Entry = { signature: string; loading: Promise<Model> };

export class ModelRepository {
  private readonly cache = new Map<string, Entry>();

  constructor(readonly dir: string | undefined, private readonly log?: ModelLog) {}

  /** Loads every model of the folder (at start): broken ones are logged and remembered, nothing is thrown. */
  async loadAll(): Promise<{ loaded: string[]; broken: string[] }> {
    const loaded: string[] = [];
    const broken: string[] = [];
    if (this.dir === undefined) return { loaded, broken };
    let files: string[];
    try {
      files = await readdir(this.dir);
    } catch (e) {
      this.log?.error({ dir: this.dir, err: (e as Error).message }, `model repository ${this.dir} cannot be read: ${(e as Error).message}`);
      return { loaded, broken };
    }
    const names = new Set<string>();
    for (const f of files) {
      const ext = path.extname(f);
      const name = f.slice(0, -ext.length);
      if ((ext === '.json' || ext === '.onnx') && MODEL_NAME.test(name)) names.add(name);
    }
    for (const name of [...names].sort()) {
      try {
        await this.get(name);
        loaded.push(name);
      } catch {
        broken.push(name);
      }
    }
    return { loaded, broken };
  }

  /**
   * Reloads the folder's models shortly after its files change, so that a model broken by an edit is logged then,
   * not at its next use (which checks again anyway). Returns the function that stops watching; a folder that cannot be
   * watched is checked on use only.
   */
  watch(debounceMs = 250): () => void {
    if (this.dir === undefined) return () => undefined;
    let timer: NodeJS.Timeout | undefined;
    let watcher: FSWatcher;
    try {
      watcher = watchDir(this.dir, () => {
        clearTimeout(timer);
        timer = setTimeout(() => void this.loadAll(), debounceMs);
        timer.unref();
      });
      watcher.on('error', () => watcher.close());
      watcher.unref();
    } catch {
      return () => undefined;
    }
    return () => {
      clearTimeout(timer);
      watcher.close();
    };
  }

  /** The model, loading it when its files are new or changed; NOT_FOUND, or MODEL_UNAVAILABLE when it is broken. */
  async get(name: string): Promise<Model> {
    if (this.dir === undefined) throw new GradserveError('NOT_FOUND', `no model repository is configured (GRADSERVE_MODEL_REPOSITORY), so there is no model "${name}"`);
    if (!MODEL_NAME.test(name)) throw new GradserveError('NOT_FOUND', `no model named "${name}"`);
    const dir = this.dir;
    const stats = await Promise.all(KINDS.map((ext) => stat(path.join(dir, `${name}${ext}`)).then((s) => (s.isFile() ? s : undefined), () => undefined)));
    const [json, , onnx] = stats;
    if (json === undefined && onnx === undefined) {
      this.cache.delete(name);
      throw new GradserveError('NOT_FOUND', `no model named "${name}" in the model repository`);
    }
    const signature = stats.map((s) => (s === undefined ? '-' : `${s.size}:${s.mtimeMs}`)).join('|');
    let entry = this.cache.get(name);
    if (entry === undefined || entry.signature !== signature) {
      const loading = this.load(name, json !== undefined, stats[1] !== undefined, onnx !== undefined).then(
        (model) => {
          this.log?.info({ model: name, parameters: model.parameterInfo.length }, `model "${name}" loaded`);
          return model;
        },
        (e: unknown) => {
          const msg = e instanceof GradserveError ? e.detail : (e as Error).message;
          this.log?.error({ model: name, err: msg }, `model "${name}" failed to load: ${msg}`);
          throw new GradserveError('MODEL_UNAVAILABLE', `model "${name}" failed to load: ${msg}`, { cause: e });
        },
      );
      // Reported once, here or by the caller: never as an unhandled rejection.
      loading.catch(() => undefined);
      entry = { signature, loading };
      this.cache.set(name, entry);
    }
    return entry.loading;
  }

  private async load(name: string, hasJson: boolean, hasWeights: boolean, hasOnnx: boolean): Promise<Model> {
    const dir = this.dir!;
    if (hasJson && hasOnnx) throw new Error(`both ${name}.json and ${name}.onnx define it; keep one`);
    if (hasOnnx) {
      if (hasWeights) throw new Error(`${name}.safetensors belongs to a ${name}.json graph, but the model is ${name}.onnx`);
      const imported = importOnnx(await readFile(path.join(dir, `${name}.onnx`)));
      return finish(name, imported.graph, imported.parameters, imported.notes);
    }
    const file = path.join(dir, `${name}.json`);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new Error(`${name}.json is not valid JSON: ${(e as Error).message}`);
    }
    const wrapped = typeof raw === 'object' && raw !== null && 'graph' in raw && !('nodes' in raw);
    const candidate = wrapped ? (raw as { graph: unknown }).graph : raw;
    const parsed = Graph.safeParse(candidate);
    if (!parsed.success) {
      const first = parsed.error.issues[0]!;
      throw new Error(`${name}.json is not a graph: ${formatPath(first.path) || '(graph)'}: ${first.message}`);
    }
    const graph = parsed.data as GraphT;
    let listed: string[] | undefined;
    if (wrapped && (raw as { parameters?: unknown }).parameters !== undefined) {
      const p = (raw as { parameters?: unknown }).parameters;
      if (!Array.isArray(p) || !p.every((x) => typeof x === 'string')) throw new Error(`${name}.json: "parameters" must be a list of input names`);
      listed = p as string[];
    }
    let weights = new Map<string, Tensor>();
    if (hasWeights) {
      try {
        weights = readSafetensors(await readFile(path.join(dir, `${name}.safetensors`))).tensors;
      } catch (e) {
        throw new Error(`${name}.safetensors: ${(e as Error).message}`);
      }
    } else if (listed !== undefined && listed.length > 0) {
      throw new Error(`${name}.json lists parameters (${listed.join(', ')}) but there is no ${name}.safetensors`);
    }
    return finish(name, graph, checkWeights(name, graph, weights, listed), []);
  }
}

/** A weight file must hold exactly the parameters, each as its graph input declares it. */
function checkWeights(name: string, graph: GraphT, weights: Map<string, Tensor>, listed: string[] | undefined): Tensors {
  const problems: string[] = [];
  const inputs = graph.inputs ?? {};
  for (const p of listed ?? []) {
    if (!Object.hasOwn(inputs, p)) problems.push(`parameter "${p}" is not a declared graph input`);
    else if (!weights.has(p)) problems.push(`parameter "${p}" has no tensor in ${name}.safetensors`);
  }
  const out: Tensors = nameMap();
  for (const [key, t] of weights) {
    const spec = Object.hasOwn(inputs, key) ? inputs[key] : undefined;
    if (spec === undefined) {
      problems.push(`tensor "${key}" of ${name}.safetensors names no graph input (every tensor there is a parameter: a declared input)`);
      continue;
    }
    if (listed !== undefined && !listed.includes(key)) {
      problems.push(`tensor "${key}" of ${name}.safetensors is not among the listed parameters`);
      continue;
    }
    const declared = spec.datatype === undefined ? undefined : parseDType(spec.datatype);
    if (declared !== undefined && declared !== t.dtype) problems.push(`tensor "${key}" is ${t.dtype}, the graph declares ${declared}`);
    if (spec.shape !== undefined) {
      const s = spec.shape;
      if (s.length !== t.shape.length || !s.every((d, i) => d === null || d === t.shape[i])) {
        problems.push(`tensor "${key}" has shape [${t.shape.join(', ')}], the graph declares ${fmtSymShape(s)}`);
      }
    }
    out[key] = t;
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return out;
}

function finish(name: string, graph: GraphT, parameters: Tensors, notes: string[]): Model {
  const parameterInfo = Object.entries(parameters).map(([n, t]) => ({ name: n, datatype: t.dtype, shape: [...t.shape] }));
  return { name, graph: deepFreeze(graph), parameters: Object.freeze(Object.assign(nameMap<Tensor>(), parameters)), parameterInfo, notes };
}

/** A request's inputs over the model's stored parameters: what the request gives wins. */
export function withParameters(model: Model | undefined, inputs: Tensors): Tensors {
  if (model === undefined || model.parameterInfo.length === 0) return inputs;
  return Object.assign(nameMap<Tensor>(), model.parameters, inputs);
}

function deepFreeze<T>(root: T): T {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || Object.isFrozen(v) || ArrayBuffer.isView(v)) continue;
    Object.freeze(v);
    if (Array.isArray(v) && v.length > 0 && typeof v[0] !== 'object') continue;
    for (const x of Object.values(v)) if (typeof x === 'object' && x !== null) stack.push(x);
  }
  return root;
}
