// Module hooks for ts-worker.mjs: `.js` specifiers of TypeScript sources resolve to their `.ts` files (as tsc's
// NodeNext resolution does), and `.ts` files are stripped of their types.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'rolldown/utils';

export async function resolve(specifier, context, next) {
  if (specifier.endsWith('.js') && context.parentURL?.endsWith('.ts') && (specifier.startsWith('.') || specifier.startsWith('/'))) {
    const ts = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
    if (!existsSync(fileURLToPath(new URL(specifier, context.parentURL))) && existsSync(fileURLToPath(ts))) {
      return { url: ts.href, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.startsWith('file:') && url.endsWith('.ts')) {
    const file = fileURLToPath(url);
    const out = transformSync(file, readFileSync(file, 'utf8'), { lang: 'ts', sourceType: 'module' });
    if (out.errors?.length) throw new Error(`${file}: ${out.errors.map((e) => e.message).join('; ')}`);
    return { format: 'module', source: out.code, shortCircuit: true };
  }
  return next(url, context);
}
