/**
 * The Python package (clients/python) against live servers: its own unittest suite, run with PYTHONPATH pointing at
 * the package (no pip install). It covers every endpoint, errors, retries (against tiny local servers of its own),
 * binary round trips, the GraphBuilder against GET /v1/ops and the PyTorch bridge (gradcheck, gradgradcheck). Python
 * with numpy is a required toolchain (these tests fail, not skip, without it); the bridge's tests skip only where torch
 * cannot be imported, and this file checks that they ran wherever it can be.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startServer, type LiveServer } from '../examples/live-server.js';

const PY = process.env.GRADSERVE_PYTHON ?? '/usr/bin/python3';
const PKG = join(import.meta.dirname, '../../clients/python');
const API_KEY = 'py-test-key';

let server: LiveServer;
let keyed: LiveServer;
let models: string;
beforeAll(async () => {
  // the Python suite writes its models into this folder; the server picks new files up when they are first used
  models = mkdtempSync(join(tmpdir(), 'gradserve-pypkg-models-'));
  server = await startServer({ modelRepository: models });
  keyed = await startServer({ apiKeys: [API_KEY], requestMemoryBytes: 4096 });
});
afterAll(async () => {
  await server?.close();
  await keyed?.close();
  rmSync(models, { recursive: true, force: true });
});

function py(args: string[]) {
  return run(PY, args, {
    cwd: PKG,
    env: {
      PYTHONPATH: PKG,
      PYTHONDONTWRITEBYTECODE: '1',
      GRADSERVE_URL: server.url,
      GRADSERVE_MODEL_REPOSITORY: models,
      GRADSERVE_KEYED_URL: keyed.url,
      GRADSERVE_API_KEY: API_KEY,
    },
    timeoutMs: 600_000,
  });
}

describe(`Python package clients/python (${PY})`, () => {
  it('the unittest suite passes: every endpoint, errors, retries, binary round trips, GraphBuilder, torch bridge', async () => {
    const r = await py(['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v']);
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(0);
    const ran = Number(/^Ran (\d+) tests?/m.exec(out)?.[1]);
    expect(ran, out).toBeGreaterThanOrEqual(40);
    expect(out).toMatch(/^OK\b/m);
    const hasTorch = (await py(['-c', 'import torch'])).code === 0;
    const skipped = [...out.matchAll(/ \.\.\. skipped '(.*)'$/gm)].map((m) => m[1]);
    if (hasTorch) expect(skipped, out).toEqual([]);
    else for (const s of skipped) expect(s).toMatch(/torch cannot be imported/);
  }, 600_000);

  it('the package installs metadata that names it gradserve and depends only on numpy', async () => {
    const r = await py(['-c', [
      'import tomllib, gradserve, json',
      'p = tomllib.load(open("pyproject.toml", "rb"))["project"]',
      'print(json.dumps({"name": p["name"], "deps": p["dependencies"], "version": p["version"], "mod": gradserve.__version__}))',
    ].join('\n')]);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim()) as { name: string; deps: string[]; version: string; mod: string };
    expect(m.name).toBe('gradserve');
    expect(m.deps).toEqual(['numpy']);
    expect(m.mod).toBe(m.version);
  });
});
