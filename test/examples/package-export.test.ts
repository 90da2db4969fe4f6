/**
 * `import { GradserveClient } from 'gradserve/client'` resolves through package.json "exports" to the built
 * dist/client in plain Node (no bundler). Needs `npm run build:ts` first (CI builds before testing); without a
 * build the test is reported as skipped with that reason in its name.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './live-server.js';

const ROOT = join(import.meta.dirname, '../..');
const built = existsSync(join(ROOT, 'dist/client/index.js'));

describe.skipIf(!built)(built ? 'package export gradserve/client (dist built)' : 'package export gradserve/client: SKIPPED because dist/ is not built (run npm run build:ts)', () => {
  it('plain Node resolves gradserve/client and its exports work', async () => {
    const script = `
      const m = await import('gradserve/client');
      const t = m.tensor(new Float32Array([1.5, -2]), [1, 2]);
      const w = m.encodeTensor(t, { b64Threshold: 0 });
      const back = m.decodeTensor(w);
      console.log(JSON.stringify({ names: Object.keys(m).sort(), b64: w.b64, back: Array.from(back.data), ctor: back.data.constructor.name }));`;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.names).toEqual(expect.arrayContaining(['GradserveClient', 'GradserveClientError', 'tensor', 'toTensor']));
    expect(out.back).toEqual([1.5, -2]);
    expect(out.ctor).toBe('Float32Array');
    expect(out.b64).toBe(Buffer.from(new Float32Array([1.5, -2]).buffer).toString('base64'));
  });
});
