#!/usr/bin/env node
/**
 * `gradserve serve`: the only place that listens. Flags mirror the environment variables (docs/configuration.md).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { HEAP_FLAG, SETTINGS, defaultConfig, loadConfig, type ServerConfig } from './server/config.js';

const LIBUV_DEFAULT_POOL = 4;

/** A node flag that sets the initial heap size (a size the user gives node wins over HEAP_FLAG). */
const HEAP_ARG = /^--initial-(old-space|heap)[-_]size(=|$)/;

function usage(): string {
  const d = defaultConfig() as unknown as Record<string, unknown>;
  const lines = SETTINGS.map((s) => {
    const def = d[s.key];
    const shown = Array.isArray(def) ? (def.length ? def.join(',') : '(none)') : def === undefined ? '(none)' : String(def);
    return `  ${s.flag.padEnd(24)} ${s.env[0]!.padEnd(30)} ${s.doc.replace(/`/g, '')} [default: ${shown}]`;
  });
  return ['Usage: gradserve serve [options]', '', '  option                   environment variable', ...lines, '', '  -h, --help               this help', '  -v, --version            print the version'].join('\n');
}

/**
 * libuv sizes its thread pool once, on first use, and the ESM loader has used it before this module runs; so a
 * different pool size needs a fresh process with UV_THREADPOOL_SIZE in its environment. V8 sizes its heap when the
 * process starts, so the same goes for HEAP_FLAG. `npm start`, the container image and the Kubernetes manifests start
 * node with both already right, and serve in the first process.
 */
function reexecIfNeeded(workers: number): boolean {
  const current = Number(process.env.UV_THREADPOOL_SIZE ?? LIBUV_DEFAULT_POOL);
  const heap = process.execArgv.some((a) => HEAP_ARG.test(a)) ? [] : [HEAP_FLAG];
  if (current === workers && heap.length === 0) return false;
  const child = spawn(process.execPath, [...process.execArgv, ...heap, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(workers) },
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  return true;
}

async function serve(config: ServerConfig): Promise<void> {
  // OpenBLAS reads its thread count when the addon is loaded, which happens inside buildApp: set it before.
  if (config.blasThreads > 0) process.env.OPENBLAS_NUM_THREADS = String(config.blasThreads);
  const { buildApp, buildMetricsApp } = await import('./server/app.js');
  const { startTelemetry } = await import('./server/telemetry.js');
  const telemetry = await startTelemetry(process.env, packageVersion());
  const { loggerOptions } = await import('./server/logger.js');
  const { logger, warning } = loggerOptions(config.logLevel, config.prettyLogs);
  const app = await buildApp({ ...config, logger, tracer: telemetry?.tracer });
  if (warning !== undefined) app.log.warn(warning);
  if (telemetry !== undefined) app.log.info({ exporters: telemetry.exporters }, 'OpenTelemetry tracing on');
  const metricsApp = config.metricsPort > 0 ? await buildMetricsApp(app) : undefined;
  let closing = false;
  // Spans still buffered are sent before the process ends (bounded: an unreachable collector must not hold the exit).
  const exit = (code: number): void => {
    if (telemetry === undefined) process.exit(code);
    const stop = setTimeout(() => process.exit(code), 2000);
    stop.unref();
    telemetry.shutdown().then(() => process.exit(code), () => process.exit(code));
  };
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    const force = setTimeout(() => {
      // Every request still running gets 503 OVERLOADED with Retry-After (its client retries elsewhere), not a reset.
      app.gradserve.answerInFlight().then(
        (n) => {
          app.log.warn({ timeoutMs: config.shutdownTimeoutMs, answered503: n }, 'in-flight requests did not finish in time; answered 503 and exiting');
          exit(0);
        },
        () => exit(0),
      );
    }, config.shutdownTimeoutMs);
    force.unref();
    app.close().then(
      () => exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'error while closing');
        exit(0);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await app.listen({ host: config.host, port: config.port });
  if (metricsApp !== undefined) {
    await metricsApp.listen({ host: config.host, port: config.metricsPort });
    app.log.info({ port: config.metricsPort }, 'metrics listening (GET /metrics, no API key)');
  }
  const heap = process.execArgv.filter((a) => HEAP_ARG.test(a)).join(' ') || 'default';
  app.log.info({ workers: config.workers, uvThreadpool: process.env.UV_THREADPOOL_SIZE ?? LIBUV_DEFAULT_POOL, blasThreads: process.env.OPENBLAS_NUM_THREADS ?? 'default', heap }, 'gradserve ready');
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (cmd === '-v' || cmd === '--version' || cmd === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return;
  }
  if (cmd !== 'serve') throw new Error(`unknown command "${cmd}"\n\n${usage()}`);
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const config = loadConfig(process.env, rest);
  if (reexecIfNeeded(config.workers)) return;
  await serve(config);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`gradserve: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
