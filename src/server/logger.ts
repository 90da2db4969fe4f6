/**
 * The server's logger options. `pino-pretty` (human-readable logs, `--pretty`) is not a dependency of gradserve: it is
 * used when it is installed and asked for; otherwise the logs stay JSON lines and the caller reports why.
 */
import { createRequire } from 'node:module';

export interface LoggerChoice {
  logger: { level: string; transport?: { target: string; options: Record<string, unknown> } };
  /** Set when pretty logs were asked for but cannot be given. */
  warning?: string;
}

const PRETTY = 'pino-pretty';

function resolvePretty(): string {
  return createRequire(import.meta.url).resolve(PRETTY);
}

export function loggerOptions(level: string, pretty: boolean, resolve: (name: string) => string = resolvePretty): LoggerChoice {
  if (!pretty) return { logger: { level } };
  let target: string;
  try {
    target = resolve(PRETTY);
  } catch {
    return {
      logger: { level },
      warning: `pretty logs need the optional package ${PRETTY} (npm install ${PRETTY}); logging JSON lines instead`,
    };
  }
  return {
    logger: { level, transport: { target, options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } },
  };
}
