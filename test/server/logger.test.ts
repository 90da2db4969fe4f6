/**
 * Logger options (src/server/logger.ts): pino-pretty is optional. Pretty logs are used when it resolves and asked
 * for; when it is missing the server logs JSON lines and says why instead of failing to start.
 */
import { existsSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { loggerOptions } from '../../src/server/logger.js';

describe('loggerOptions', () => {
  test('JSON lines unless pretty logs are asked for', () => {
    expect(loggerOptions('info', false)).toEqual({ logger: { level: 'info' } });
  });

  test('pretty logs go through the installed pino-pretty', () => {
    const { logger, warning } = loggerOptions('debug', true);
    expect(warning).toBeUndefined();
    expect(logger.level).toBe('debug');
    expect(logger.transport?.target).toMatch(/pino-pretty/);
    expect(existsSync(logger.transport!.target)).toBe(true);
  });

  test('without pino-pretty the logs stay JSON lines, with a warning naming the package', () => {
    const missing = (name: string): string => {
      throw Object.assign(new Error(`Cannot find module '${name}'`), { code: 'MODULE_NOT_FOUND' });
    };
    const { logger, warning } = loggerOptions('warn', true, missing);
    expect(logger).toEqual({ level: 'warn' });
    expect(warning).toMatch(/npm install pino-pretty/);
  });
});
