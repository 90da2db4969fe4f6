/**
 * Starts the real service on an ephemeral loopback port for the example suites: the examples talk HTTP to it exactly
 * as they would to a deployed gradserve. Children must be spawned asynchronously (never execFileSync), or the
 * server living in this same process could not answer them.
 */
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface LiveServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: Record<string, unknown> = {}): Promise<LiveServer> {
  const { buildApp } = (await import('../../src/server/app.js')) as {
    buildApp: (c: Record<string, unknown>) => unknown;
  };
  const app = (await buildApp({ logLevel: 'silent', ...config })) as {
    listen(o: { port: number; host: string }): Promise<string>;
    server: { address(): AddressInfo | string | null };
    close(): Promise<void>;
  };
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${addr.port}`, close: () => app.close() };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Full path of an executable on PATH, or undefined: decides whether an optional toolchain's suite runs. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    if (dir !== '' && existsSync(p)) return p;
  }
  return undefined;
}

/** Parse the examples' `name [shape] = values` lines into shape + flat values. */
export function parseTensorLines(out: string): Map<string, { shape: number[]; values: number[] }> {
  const m = new Map<string, { shape: number[]; values: number[] }>();
  for (const line of out.split('\n')) {
    const r = /^(\S+) (\[[\d, ]*\]) = (.*)$/.exec(line.trim());
    if (r === null) continue;
    const values = (JSON.parse(r[3]!) as unknown[]).flat(Infinity as 1) as number[];
    m.set(r[1]!, { shape: JSON.parse(r[2]!) as number[], values: values.map(Number) });
  }
  return m;
}
