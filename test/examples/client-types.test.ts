/**
 * Runs tsc on client-types.check.ts: the client's request/response types must agree with the server's zod schemas.
 * (vitest strips types without checking them, hence the compiler run.)
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './live-server.js';

const ROOT = join(import.meta.dirname, '../..');

describe('gradserve/client types vs the server zod schemas', () => {
  it('src/client compiles for a browser: DOM + ES2022 libraries only, no @types/node', async () => {
    const r = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(import.meta.dirname, 'tsconfig.browser.json')], { cwd: ROOT });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('client-types.check.ts compiles (every request/response field agrees)', async () => {
    const r = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(import.meta.dirname, 'tsconfig.types.json')], { cwd: ROOT });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
