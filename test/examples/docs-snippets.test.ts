/**
 * docs/clients.md stays true: its curl, Python and TypeScript snippets are extracted, pointed at a live server, run,
 * and the numbers the page shows are compared with what they produce. (```py blocks are fragments, not run.)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startServer, type LiveServer } from './live-server.js';
import { expectClose, seedReference } from './reference.js';

const ROOT = join(import.meta.dirname, '../..');
const DOC = readFileSync(join(ROOT, 'docs/clients.md'), 'utf8');
const DOC_URL = 'http://127.0.0.1:8080';

function blocks(): { lang: string; code: string }[] {
  return [...DOC.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

let server: LiveServer;
let tmp: string;
beforeAll(async () => {
  server = await startServer();
  tmp = mkdtempSync(join(tmpdir(), 'gradserve-docs-'));
});
afterAll(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('docs/clients.md snippets against a live server', () => {
  it('curl snippets answer what the page shows', async () => {
    const all = blocks();
    const curls = all.map((b, i) => ({ ...b, next: all[i + 1] })).filter((b) => b.lang === 'sh' && b.code.startsWith('curl'));
    expect(curls.length).toBeGreaterThanOrEqual(2);
    for (const b of curls) {
      const r = await run('sh', ['-c', b.code.replaceAll(DOC_URL, server.url)]);
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout);
      // The shown answer: the ```json block right after, or a `# {...}` comment inside the snippet.
      const shown = b.next?.lang === 'json' ? b.next.code : /^# (\{.*\})$/m.exec(b.code)?.[1]?.replace('{...}', 'null');
      expect(shown, 'snippet shows its answer').toBeDefined();
      const want = JSON.parse(shown!);
      for (const field of ['gradients', 'jacobians'] as const) {
        if (want[field] === undefined) continue;
        expect(JSON.stringify(got[field])).toBe(JSON.stringify(want[field]));
      }
      if (want.mode !== undefined) expect(got.mode).toBe(want.mode);
    }
  });

  it('Python snippets run and give the numbers the page shows', async () => {
    const code = blocks().filter((b) => b.lang === 'python').map((b) => b.code).join('\n');
    const script = `${code.replaceAll(DOC_URL, server.url)}
import json
print("RESULT " + json.dumps({"dx": r["gradients"]["x"].tolist(), "dw": r["gradients"]["w"].tolist(), "jac": jac.tolist(), "hess": hess.tolist(),
                             "gb": gb.tolist(), "y": yt.tolist(), "tx": xt.grad.tolist()}))
`;
    writeFileSync(join(tmp, 'snippets.py'), script);
    const r = await run('/usr/bin/python3', [join(tmp, 'snippets.py')], { env: { PYTHONPATH: join(ROOT, 'clients/python'), PYTHONDONTWRITEBYTECODE: '1' } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^NOT_SCALAR 422 /m);
    const out = JSON.parse(/^RESULT (.*)$/m.exec(r.stdout)![1]!);
    const ref = seedReference();
    expectClose(out.dx.flat(), ref.dx);
    expectClose(out.dw.flat(), ref.dw);
    expectClose(out.jac.flat(3), ref.jacYX);
    expectClose(out.hess.flat(3), [14, 32, 32, 77]);
    expectClose(ref.hessHalfSquared, [14, 32, 32, 77]);
    // the GraphBuilder: d(sum(relu(x·w)))/dw = xᵀ·1 (every y > 0); the torch bridge: d(sum(y²))/dx = 2y·wᵀ
    expect(ref.y.every((v) => v > 0)).toBe(true);
    expectClose(out.gb.flat(), seedReference([1, 1, 1]).dw);
    expectClose(out.y.flat(), ref.y);
    expectClose(out.tx.flat(), seedReference(ref.y.map((v) => 2 * v)).dx);
  });

  it('TypeScript snippets type-check against gradserve/client, run, and give the numbers the page shows', async () => {
    const code = blocks().filter((b) => b.lang === 'ts').map((b) => b.code).join('\n');
    const clientEntry = join(ROOT, 'src/client/index.js');
    const file = join(tmp, 'snippets.mts'); // .mts: an ES module (top-level await) without a package.json
    writeFileSync(file, `${code.replace("'gradserve/client'", JSON.stringify(clientEntry)).replaceAll(DOC_URL, server.url)}
export { gradients, jacobians, mode, hessians, hvp, params, perExampleNorms, traceEstimate, traceStderr, traceExact };
`);
    writeFileSync(join(tmp, 'tsconfig.json'), JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { noEmit: true, rootDir: '/', types: [], lib: ['ES2022', 'DOM'], module: 'NodeNext', target: 'ES2022' },
      files: [file],
    }));
    const tsc = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(tmp, 'tsconfig.json')], { cwd: tmp });
    expect(tsc.stdout + tsc.stderr).toBe('');

    const m = (await import(/* @vite-ignore */ file)) as Record<string, any>;
    expectClose(m.gradients.x.data, [5, 11]);
    expect(m.gradients.w.shape).toEqual([2, 3]);
    expect(m.jacobians.y.x.shape).toEqual([1, 3, 1, 2]);
    expect(['forward', 'reverse']).toContain(m.mode);
    expectClose(m.hessians.x.x.data, [14, 32, 32, 77]);
    expectClose(m.hvp.x.data, [-18, -45]);
    expect(m.params.w1.data).toBeInstanceOf(Float32Array);
    // batched derivatives: one norm per example; Hutchinson within five standard errors of the exact trace
    expect(m.perExampleNorms).toHaveLength(4);
    for (const n of m.perExampleNorms) expect(Number.isFinite(n) && n >= 0).toBe(true);
    expect(m.traceStderr).toBeGreaterThanOrEqual(0);
    expect(Math.abs(m.traceEstimate - m.traceExact)).toBeLessThanOrEqual(5 * m.traceStderr + 1e-4 * Math.abs(m.traceExact) + 1e-6);
  });
});
