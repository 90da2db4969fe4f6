/** `gradserve serve` from the sources in a child process, on a free port: for signals, exit codes and the SDK setup. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HEAP_FLAG } from '../../src/server/config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildServer {
  child: ChildProcess;
  base: string;
  exited: Promise<number | null>;
  /** Everything it printed so far (stdout and stderr). */
  log: () => string;
}

/**
 * `nodeFlags`: node's own flags before the script; by default HEAP_FLAG, which `npm start` and the image pass too
 * (without it the CLI re-executes itself to get it, and the process spawned here is not the one serving).
 */
export async function startServer(args: string[], env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = [HEAP_FLAG]): Promise<ChildServer> {
  const p = spawn(process.execPath, ['--import', './test/support/ts-register.mjs', ...nodeFlags, 'src/cli.ts', 'serve', '--host', '127.0.0.1', '--port', '0', ...args], {
    cwd: root,
    env: { ...process.env, UV_THREADPOOL_SIZE: '2', GRADSERVE_WORKERS: '2', GRADSERVE_BLAS_THREADS: '1', GRADSERVE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no listening line in 30 s:\n${out}`)), 30_000);
      const check = (): void => {
        const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!);
        }
      };
      p.stdout!.on('data', check);
      p.once('exit', () => reject(new Error(`exited before listening:\n${out}`)));
    });
    return { child: p, base, exited, log: () => out };
  } catch (e) {
    p.kill('SIGKILL');
    throw e;
  }
}
