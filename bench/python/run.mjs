// `npm run bench -- python`: runs run.py (the Python client against a raw http.client loop) with /usr/bin/python3
// (or PYTHON); `--quick` takes fewer requests. See README.md.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const args = [join(here, 'run.py'), ...(quick ? ['--mlp-reps', '200', '--vjp-reps', '8'] : [])];
const r = spawnSync(process.env.PYTHON ?? '/usr/bin/python3', args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
