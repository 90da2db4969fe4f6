/**
 * The dependency-free Java example against a live server. Java is the optional third language: without `javac`
 * on PATH the test is registered as skipped with the reason in its name, never dropped silently.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTensorLines, run, startServer, which, type LiveServer } from './live-server.js';
import { expectSeedTensors } from './reference.js';

const DIR = join(import.meta.dirname, '../../examples/java');
const JAVAC = which('javac');
const JAVA = which('java');
const present = JAVAC !== undefined && JAVA !== undefined;
const title = present
  ? `Java example (javac at ${JAVAC})`
  : 'Java example: SKIPPED because javac/java are not on PATH (install a JDK 17 to run it)';

describe.skipIf(!present)(title, () => {
  let server: LiveServer;
  let out: string;
  beforeAll(async () => {
    server = await startServer();
    out = mkdtempSync(join(tmpdir(), 'gradserve-java-'));
  });
  afterAll(async () => {
    await server?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('compiles with javac --release 17 and no dependencies, then runs the seed example by value', async () => {
    const sources = readdirSync(DIR).filter((f) => f.endsWith('.java')).map((f) => join(DIR, f));
    const c = await run(JAVAC!, ['--release', '17', '-Xlint:all', '-Werror', '-d', out, ...sources]);
    expect(c.code, c.stdout + c.stderr).toBe(0);

    const r = await run(JAVA!, ['-cp', out, 'SeedExample', server.url]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expectSeedTensors(parseTensorLines(r.stdout));
    // 1000 rows of FP32 (8000 bytes) are over the 4 KiB threshold: framed request, framed answer.
    const batch = /^batch y \[1000, 3\] via binary: max abs error ([\d.eE+-]+)$/m.exec(r.stdout);
    expect(batch, r.stdout).not.toBeNull();
    expect(Number(batch![1])).toBeLessThan(1e-4);
    expect(r.stdout).toMatch(/^error NOT_SCALAR 422: /m);
    expect(r.stdout).toContain('reference agrees');
  });
});
