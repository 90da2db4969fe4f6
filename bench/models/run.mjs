#!/usr/bin/env node
// `npm run bench -- models`: runs every model benchmark of this folder (each <name>.mjs but this one and graphs.mjs, the model definitions) in turn, passing
// the flags on (--quick, --rounds, ...). Each prints its own ratios against its peer.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const flags = process.argv.slice(2);
let failed = 0;
for (const f of readdirSync(here).filter((n) => n.endsWith('.mjs') && n !== 'run.mjs' && n !== 'graphs.mjs').sort()) {
  console.log(`\n--- bench/models/${f} ---`);
  const r = spawnSync(process.execPath, [join(here, f), ...flags], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
