// Static checks of the Dockerfile and .dockerignore; the container test (npm run test:container) builds and runs it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
// instructions with their continuation lines joined, comments dropped
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stageStarts = instructions.flatMap((l, i) => (l.startsWith('FROM ') ? [i] : []));
const runtime = instructions.slice(stageStarts[stageStarts.length - 1]);

describe('Dockerfile', () => {
  it('every stage starts from node:20-bookworm-slim, and there is a separate runtime stage', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^FROM node:20-bookworm-slim( AS \w+)?$/);
  });

  it('the runtime stage installs only the OpenBLAS runtime, copies only build outputs, runs non-root', () => {
    const apt = runtime.filter((l) => l.includes('apt-get install'));
    expect(apt).toHaveLength(1);
    expect(apt[0]).toMatch(/--no-install-recommends libopenblas0 /);
    expect(runtime.some((l) => /g\+\+|cmake|-dev\b/.test(l))).toBe(false);
    const copies = runtime.filter((l) => l.startsWith('COPY'));
    expect(copies.every((l) => l.startsWith('COPY --from=build '))).toBe(true);
    expect(copies.map((l) => l.split(' ')[2]).sort()).toEqual(
      // playground/: the static page GET /playground serves (its script runs in the browser, nothing to compile)
      ['/src/build/Release/gradserve.node', '/src/dist', '/src/node_modules', '/src/package.json', '/src/playground'].sort(),
    );
    expect(runtime).toContain('USER 1000:1000');
  });

  it('exposes 8080, health-checks readiness and starts `node dist/cli.js serve` in exec form', () => {
    expect(runtime).toContain('EXPOSE 8080');
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(/CMD \["node", "-e", .*\/v2\/health\/ready/);
    expect(runtime).toContain('ENTRYPOINT ["node", "dist/cli.js"]');
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
