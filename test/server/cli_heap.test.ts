/**
 * The CLI serves with V8's old generation started at HEAP_FLAG's size (src/server/config.ts): a node started without
 * it re-executes itself with it, forwards SIGTERM and exits with the child's code; a size the user gave is kept.
 * Runs `gradserve serve` from the sources in a child process.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { HEAP_FLAG } from '../../src/server/config.js';
import { startServer } from './child_server.js';

let child: ChildProcess | undefined;

afterEach(() => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** The `heap` field of the "gradserve ready" log line. */
function readyHeap(log: string): string | undefined {
  for (const line of log.split('\n')) {
    try {
      const j = JSON.parse(line) as { msg?: string; heap?: string };
      if (j.msg === 'gradserve ready') return j.heap;
    } catch {
      /* not a JSON log line */
    }
  }
  return undefined;
}

async function waitForReady(log: () => string): Promise<string | undefined> {
  for (let i = 0; i < 100 && readyHeap(log()) === undefined; i++) await new Promise((r) => setTimeout(r, 50));
  return readyHeap(log());
}

describe('the heap size the server runs with', () => {
  it('started without it, the CLI re-executes itself with HEAP_FLAG, and SIGTERM still ends both with code 0', async () => {
    const s = await startServer([], {}, []);
    child = s.child;
    expect(await waitForReady(s.log)).toBe(HEAP_FLAG);
    expect((await fetch(`${s.base}/v2/health/live`)).status).toBe(200);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it("keeps the user's own initial heap size", async () => {
    const s = await startServer([], {}, ['--initial-old-space-size=96']);
    child = s.child;
    expect(await waitForReady(s.log)).toBe('--initial-old-space-size=96');
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });
});
