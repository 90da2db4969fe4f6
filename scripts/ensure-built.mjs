#!/usr/bin/env node
// Builds what is missing or older than its sources, so that `npm start` and `npm test` work straight after `npm ci`.
// Usage: node scripts/ensure-built.mjs [--native-only]
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function newest(paths) {
  let t = 0;
  const walk = (p) => {
    if (!existsSync(p)) return;
    const s = statSync(p);
    if (s.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else t = Math.max(t, s.mtimeMs);
  };
  for (const p of paths) walk(join(root, p));
  return t;
}

function stale(output, sources) {
  const out = join(root, output);
  return !existsSync(out) || statSync(out).mtimeMs < newest(sources);
}

function run(script) {
  console.error(`gradserve: npm run ${script}`);
  execSync(`npm run ${script}`, { cwd: root, stdio: 'inherit' });
}

if (stale('build/Release/gradserve.node', ['native', 'binding', 'CMakeLists.txt'])) run('build:native');
if (!process.argv.includes('--native-only') && stale('dist/cli.js', ['src', 'tsconfig.json', 'tsconfig.build.json'])) {
  run('build:ts');
}
