/**
 * The import direction of src/ (STYLE.md "The layering is a test"): server -> onnx -> engine -> autodiff -> graph -> ops ->
 * kernels/tensor, never upward. Every import of every file under src/ (static, re-export, type-only and dynamic) is
 * parsed and checked against the layer of its file; a file that no layer claims fails, so a new folder has to be placed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Lowest first: a file may import its own layer and the layers below it. */
const LAYERS: { name: string; owns: (file: string) => boolean }[] = [
  { name: 'kernels/tensor', owns: (f) => f.startsWith('tensor/') || ['errors.ts', 'kernels.ts', 'kernels.types.ts'].includes(f) },
  { name: 'ops', owns: (f) => f.startsWith('ops/') },
  { name: 'graph', owns: (f) => f.startsWith('graph/') },
  { name: 'autodiff', owns: (f) => f.startsWith('autodiff/') },
  // the library's entry module and its graph builder sit with the engine they export
  { name: 'engine', owns: (f) => f.startsWith('engine/') || ['index.ts', 'builder.ts'].includes(f) },
  // the ONNX importer writes graphs with the op registry's shape rules; the server and the CLI call it
  { name: 'onnx', owns: (f) => f.startsWith('onnx/') },
  { name: 'server', owns: (f) => f.startsWith('server/') },
  { name: 'cli', owns: (f) => f === 'cli.ts' },
];

/** The public API's types: imported type-only by every layer, itself importing only the IR and tensor types. */
const CONTRACT = 'engine.types.ts';
const CONTRACT_IMPORTS = (f: string): boolean => f === 'graph/types.ts' || f.startsWith('tensor/');

/** The HTTP client runs in browsers: it imports nothing of the engine but datatypes and the error codes. */
const isClient = (f: string): boolean => f.startsWith('client/');
const CLIENT_IMPORTS = (f: string): boolean => isClient(f) || f === 'tensor/dtype.ts' || f === 'errors.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [relative(src, p).split('\\').join('/')] : [];
  });
}

interface Import { target: string; typeOnly: boolean; text: string }

/** Relative imports of a file: `import ... from`, `export ... from`, side-effect `import '...'` and `import('...')`. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(src, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: Import[] = [];
  const add = (spec: string, typeOnly: boolean, at: string): void => {
    if (!spec.startsWith('.')) return;
    const target = normalize(join(dirname(file), spec)).split('\\').join('/').replace(/\.js$/, '.ts');
    found.push({ target, typeOnly, text: at.replace(/\s+/g, ' ').trim() });
  };
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]/gm)) {
    // `import type ...`, `export type ...`, or braces that name types only (`{ type A, type B }`)
    const typeOnly = m[2] !== undefined || /^\{\s*type\s+\w+(\s+as\s+\w+)?(\s*,\s*type\s+\w+(\s+as\s+\w+)?)*\s*,?\s*\}$/.test(m[3]!);
    add(m[4]!, typeOnly, m[0]);
  }
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) add(m[1]!, false, m[0]);
  // dynamic import() and type-level import('...') expressions
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)(\.\w+)?/g)) add(m[1]!, false, m[0]);
  return found;
}

function layerOf(file: string): number {
  return LAYERS.findIndex((l) => l.owns(file));
}

describe('layering of src/', () => {
  const files = sourceFiles(src);

  it('finds the source files and their imports', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(importsOf('engine/evaluate.ts').map((i) => i.target)).toContain('graph/plan.ts');
    expect(importsOf('engine/executor.ts').map((i) => i.target)).toContain('kernels.ts');
  });

  it('places every file in one layer (or the contract or the client)', () => {
    const unplaced = files.filter((f) => f !== CONTRACT && !isClient(f) && layerOf(f) < 0);
    expect(unplaced).toEqual([]);
  });

  it('imports only downward: server -> onnx -> engine -> autodiff -> graph -> ops -> kernels/tensor', () => {
    const upward: string[] = [];
    for (const file of files) {
      for (const imp of importsOf(file)) {
        const { target } = imp;
        const what = `${file} imports ${target} (${imp.text})`;
        if (isClient(file)) {
          if (!CLIENT_IMPORTS(target)) upward.push(`${what}: the client imports only client/, tensor/dtype.ts and errors.ts`);
        } else if (isClient(target)) {
          upward.push(`${what}: nothing imports the client`);
        } else if (file === CONTRACT) {
          if (!imp.typeOnly || !CONTRACT_IMPORTS(target)) upward.push(`${what}: the contract imports IR and tensor types only`);
        } else if (target === CONTRACT) {
          if (!imp.typeOnly) upward.push(`${what}: the contract is imported type-only`);
        } else {
          const from = layerOf(file);
          const to = layerOf(target);
          if (to < 0) upward.push(`${what}: ${target} is in no layer`);
          else if (to > from) upward.push(`${what}: ${LAYERS[from]!.name} must not import ${LAYERS[to]!.name}`);
        }
      }
    }
    expect(upward).toEqual([]);
  });

  it('keeps the transforms pure: nothing under src/autodiff, src/graph or src/ops runs kernels or loads the addon', () => {
    const runs: string[] = [];
    for (const file of files.filter((f) => /^(autodiff|graph|ops)\//.test(f))) {
      for (const imp of importsOf(file)) {
        if (imp.target === 'kernels.ts' || imp.target.startsWith('engine/')) runs.push(`${file} imports ${imp.target}`);
      }
    }
    expect(runs).toEqual([]);
  });
});
