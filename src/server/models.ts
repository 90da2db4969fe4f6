/**
 * The model repository behind /v2/models: a folder with one graph file per model, `<name>.json`, holding either the
 * graph itself or `{"graph": Graph}`. Files are re-read when their modification time changes, so models can be
 * added or replaced without a restart.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { GradserveError } from '../errors.js';
import type { Graph as GraphT } from '../graph/types.js';
import { Graph } from './schemas.js';
import { formatPath } from './body.js';

const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export class ModelRepository {
  private readonly cache = new Map<string, { mtimeMs: number; graph: GraphT }>();

  constructor(readonly dir: string | undefined) {}

  async get(name: string): Promise<GraphT> {
    if (this.dir === undefined) throw new GradserveError('NOT_FOUND', `no model repository is configured (GRADSERVE_MODEL_REPOSITORY), so there is no model "${name}"`);
    if (!MODEL_NAME.test(name)) throw new GradserveError('NOT_FOUND', `no model named "${name}"`);
    const file = path.join(this.dir, `${name}.json`);
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file)).mtimeMs;
    } catch {
      throw new GradserveError('NOT_FOUND', `no model named "${name}" in the model repository`);
    }
    const hit = this.cache.get(name);
    if (hit !== undefined && hit.mtimeMs === mtimeMs) return hit.graph;
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new GradserveError('INTERNAL', `model "${name}": ${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    const candidate = typeof raw === 'object' && raw !== null && 'graph' in raw && !('nodes' in raw) ? (raw as { graph: unknown }).graph : raw;
    const parsed = Graph.safeParse(candidate);
    if (!parsed.success) {
      const first = parsed.error.issues[0]!;
      throw new GradserveError('INTERNAL', `model "${name}": ${file} is not a graph: ${formatPath(first.path)}: ${first.message}`);
    }
    // Deeply frozen: the engine then hashes the graph (constants included) once, by identity, not per request.
    const graph = deepFreeze(parsed.data as GraphT);
    this.cache.set(name, { mtimeMs, graph });
    return graph;
  }
}

function deepFreeze<T>(root: T): T {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || Object.isFrozen(v)) continue;
    Object.freeze(v);
    if (Array.isArray(v) && v.length > 0 && typeof v[0] !== 'object') continue;
    for (const x of Object.values(v)) if (typeof x === 'object' && x !== null) stack.push(x);
  }
  return root;
}
