// Static checks of the Dockerfile and .dockerignore; the container test (npm run test:container) builds and runs it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEAP_FLAG } from '../../src/server/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
// instructions with their continuation lines joined, comments dropped
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stageStarts = instructions.flatMap((l, i) => (l.startsWith('FROM ') ? [i] : []));
const stage = (k: number): string[] => instructions.slice(stageStarts[k], stageStarts[k + 1]);
// the image: the last stage; the filesystem it copies: the stage before
const runtime = stage(stageStarts.length - 1);
const runtimeFs = stage(stageStarts.length - 2);

describe('Dockerfile', () => {
  it('builds on node:24-bookworm-slim and ships one trimmed filesystem from a stage of the same base', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThanOrEqual(3);
    for (const f of froms.slice(0, -1)) expect(f).toMatch(/^FROM node:24-bookworm-slim( AS \S+)?$/);
    expect(froms[froms.length - 1]).toBe('FROM scratch AS runtime');
    expect(runtime.filter((l) => l.startsWith('COPY'))).toEqual(['COPY --from=runtime-fs / /']);
    expect(runtime.some((l) => l.startsWith('RUN'))).toBe(false);
  });

  it('the runtime filesystem installs only the OpenBLAS runtime, drops the package managers, copies only build outputs', () => {
    const apt = runtimeFs.filter((l) => l.includes('apt-get install'));
    expect(apt).toHaveLength(1);
    expect(apt[0]).toMatch(/--no-install-recommends libopenblas0 /);
    expect(apt[0]).toMatch(/rm -rf \/usr\/local\/lib\/node_modules \/usr\/local\/bin\/npm /);
    expect(runtimeFs.some((l) => /g\+\+|cmake|-dev\b/.test(l))).toBe(false);
    const copies = runtimeFs.filter((l) => l.startsWith('COPY'));
    expect(copies.every((l) => l.startsWith('COPY --from=build '))).toBe(true);
    expect(copies.map((l) => l.split(' ')[2]).sort()).toEqual(
      // playground/: the static page GET /playground serves (its script runs in the browser, nothing to compile)
      ['/src/build/Release/gradserve.node', '/src/dist', '/src/node_modules', '/src/package.json', '/src/playground'].sort(),
    );
    expect(runtime).toContain('USER 1000:1000');
    expect(runtime.find((l) => l.startsWith('ENV '))).toMatch(/PATH=\/usr\/local\/sbin:\/usr\/local\/bin:/);
  });

  it('exposes 8080, health-checks readiness and starts `node <heap flag> dist/cli.js serve` in exec form', () => {
    expect(runtime).toContain('EXPOSE 8080');
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(/CMD \["node", "-e", .*\/v2\/health\/ready/);
    // with the heap size the CLI would otherwise re-exec itself to get (src/server/config.ts HEAP_FLAG)
    expect(runtime).toContain(`ENTRYPOINT ["node", "${HEAP_FLAG}", "dist/cli.js"]`);
    expect(runtime).toContain('CMD ["serve"]');
  });

  it('the build stage prunes dev dependencies after building', () => {
    const build = instructions.find((l) => l.includes('npm run build'));
    expect(build).toMatch(/npm run build .*npm prune --omit=dev/);
  });

  it('.dockerignore keeps host builds and dependencies out of the context', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['node_modules', 'build', 'dist', '.git']) expect(ignored).toContain(p);
  });
});
