#!/usr/bin/env node
// The container test (`npm run test:container`): builds the image from the Dockerfile, runs it the way users will
// (`--init -p 127.0.0.1:PORT:8080`), checks the seed's linear-layer VJP numerically, the image size and metadata,
// the HEALTHCHECK, that SIGTERM lets an in-flight request finish before the container exits 0, and (podman) that
// deploy/kubernetes/podman/gradserve.yaml comes up with `podman kube play` and serves through its published port.
// Everything it starts is removed at the end, also on failure or Ctrl-C. Exit status 0 only when every check passed.
//
// Environment: GRADSERVE_IMAGE (tag, default localhost/gradserve:latest), GRADSERVE_SKIP_BUILD=1 (test an existing
// image), GRADSERVE_CONTAINER_ENGINE=docker|podman (force one).
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  baseImage, build, containerLogs, containerRunning, detectEngine, freePort, imageExists, imageSizeBytes, removeContainer, sleep,
  waitReady,
} from './container-engine.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TAG = process.env.GRADSERVE_IMAGE ?? 'localhost/gradserve:latest';
const MAX_IMAGE_BYTES = 300e6;
const KUBE_FILE = path.join(ROOT, 'deploy/kubernetes/podman/gradserve.yaml');
const CONFIGMAP_FILE = path.join(ROOT, 'deploy/kubernetes/configmap.yaml');
const RUN_ID = `${process.pid}`;

const results = [];
const cleanups = [];
const log = (msg) => console.log(`[test-container] ${msg}`);

async function check(name, fn) {
  const t0 = Date.now();
  try {
    const detail = (await fn()) ?? '';
    results.push({ name, status: 'PASS', detail, ms: Date.now() - t0 });
    log(`PASS ${name}${detail ? `: ${detail}` : ''}`);
    return true;
  } catch (e) {
    results.push({ name, status: 'FAIL', detail: e.message, ms: Date.now() - t0 });
    log(`FAIL ${name}: ${e.message}`);
    return false;
  }
}
const skip = (name, why) => {
  results.push({ name, status: 'SKIP', detail: why, ms: 0 });
  log(`SKIP ${name}: ${why}`);
};
const assert = (cond, msg) => {
  if (!cond) throw new Error(msg);
};

function cleanup() {
  while (cleanups.length > 0) {
    try {
      cleanups.pop()();
    } catch (e) {
      log(`cleanup: ${e.message}`);
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanup();
    process.exit(1);
  });
}

// ---- requests and their references ----

/** The seed example: a linear layer y = x·w with N=1, D=2, M=3. */
const SEED = {
  graph: {
    inputs: { x: { shape: [null, 2], datatype: 'FP32' }, w: { shape: [2, 3], datatype: 'FP32' } },
    nodes: [{ name: 'y', op: 'matmul', inputs: ['x', 'w'] }],
    outputs: ['y'],
  },
  x: [[1.5, -2]],
  w: [[0.5, -1, 2], [1.25, 0.25, -3]],
  dy: [[1, -2, 0.5]],
};

const matmul = (a, b) => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const transpose = (a) => a[0].map((_, j) => a.map((row) => row[j]));

function seedVjpBody() {
  const t = (rows) => ({ shape: [rows.length, rows[0].length], datatype: 'FP32', data: rows.flat() });
  return { graph: SEED.graph, inputs: { x: t(SEED.x), w: t(SEED.w) }, cotangents: { y: t(SEED.dy) }, wrt: ['x', 'w'] };
}

function expectTensor(got, rows, what) {
  assert(got !== undefined, `${what} missing from the response`);
  const want = rows.flat();
  assert(JSON.stringify(got.shape) === JSON.stringify([rows.length, rows[0].length]), `${what}: shape ${JSON.stringify(got.shape)}, want [${rows.length}, ${rows[0].length}]`);
  const data = Array.isArray(got.data) ? got.data.flat(Infinity).map(Number) : [];
  assert(data.length === want.length, `${what}: ${data.length} values, want ${want.length}`);
  data.forEach((v, i) => {
    assert(Math.abs(v - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])), `${what}[${i}] = ${v}, want ${want[i]}`);
  });
}

/** POSTs the seed VJP to `base` and checks y = x·w, dL/dx = dy·wᵀ, dL/dw = xᵀ·dy. */
async function checkSeedVjp(base) {
  const res = await fetch(`${base}/v1/vjp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(seedVjpBody()),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  assert(res.status === 200, `POST /v1/vjp answered ${res.status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text);
  expectTensor(body.outputs?.y, matmul(SEED.x, SEED.w), 'outputs.y');
  expectTensor(body.gradients?.x, matmul(SEED.dy, transpose(SEED.w)), 'gradients.x');
  expectTensor(body.gradients?.w, matmul(transpose(SEED.x), SEED.dy), 'gradients.w');
  return 'y, dL/dx = dy·wᵀ and dL/dw = xᵀ·dy match';
}

/**
 * A deliberately slow but bounded request with a tiny body: m0 = u·vᵀ (n×n, every entry 1/n) is idempotent under
 * matmul, so `k` chained matmuls cost k·2n³ flops, keep every value exactly 1/n (powers of two) and sum to n.
 * /v1/evaluate frees each value at its last use, so memory stays at a few n×n buffers whatever k is.
 */
function chainBody(n, k) {
  const nodes = [{ name: 'm0', op: 'mul', inputs: ['u', 'v'] }];
  for (let i = 1; i <= k; i++) nodes.push({ name: `m${i}`, op: 'matmul', inputs: [`m${i - 1}`, 'm0'] });
  nodes.push({ name: 's', op: 'sum', inputs: [`m${k}`] });
  return {
    graph: { inputs: { u: { shape: [n, 1], datatype: 'FP32' }, v: { shape: [1, n], datatype: 'FP32' } }, nodes, outputs: ['s'] },
    inputs: {
      u: { shape: [n, 1], datatype: 'FP32', data: new Array(n).fill(1) },
      v: { shape: [1, n], datatype: 'FP32', data: new Array(n).fill(1 / n) },
    },
  };
}

async function postChain(base, n, k, timeoutMs = 60_000) {
  const t0 = Date.now();
  const res = await fetch(`${base}/v1/evaluate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(chainBody(n, k)),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  const end = Date.now();
  let s;
  try {
    s = Number(JSON.parse(text).outputs?.s?.data?.flat?.(Infinity)?.[0]);
  } catch {
    s = NaN;
  }
  return { status: res.status, s, text, ms: end - t0, end };
}

// ---- the steps ----

async function testRunningContainer(eng) {
  const name = `gradserve-test-${RUN_ID}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  cleanups.push(() => removeContainer(eng, name));
  const started = await check('run with --init -p 127.0.0.1:PORT:8080', () => {
    const r = eng.exec(['run', '-d', '--init', '--name', name, '-p', `127.0.0.1:${port}:8080`, TAG], { timeoutMs: 120_000 });
    assert(r.code === 0, `run failed: ${r.stderr.trim()}`);
    return `port ${port}`;
  });
  if (!started) return;
  const ready = await check('ready (GET /v2/health/ready = 200)', async () => {
    const t0 = Date.now();
    const ok = await waitReady(`${base}/v2/health/ready`, { timeoutMs: 90_000, alive: () => containerRunning(eng, name) });
    const why = containerRunning(eng, name) ? 'not ready within 90 s' : 'the container exited before it was ready';
    assert(ok, `${why}; logs:\n${containerLogs(eng, name)}`);
    const live = await fetch(`${base}/v2/health/live`, { signal: AbortSignal.timeout(5_000) });
    assert(live.status === 200, `GET /v2/health/live answered ${live.status}`);
    return `${((Date.now() - t0) / 1000).toFixed(1)} s after start`;
  });
  if (!ready) return;
  await check('seed linear-layer VJP (N=1, D=2, M=3)', () => checkSeedVjp(base));
  await check('playground and /v1/render served from the image (page, client modules, SVG)', async () => {
    const get = async (path) => {
      const r = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
      assert(r.status === 200, `GET ${path} answered ${r.status}`);
      return r.text();
    };
    assert((await get('/playground/')).includes('/playground/app.js'), 'the playground page does not load its script');
    for (const path of ['/playground/app.js', '/playground/client/index.js', '/playground/tensor/dtype.js']) await get(path);
    const res = await fetch(`${base}/v1/render`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: SEED.graph, transform: 'vjp', of: ['y'], wrt: ['x', 'w'] }),
      signal: AbortSignal.timeout(15_000),
    });
    const svg = await res.text();
    assert(res.status === 200 && svg.startsWith('<svg') && svg.includes('id="value:grad:w"'), `POST /v1/render answered ${res.status}: ${svg.slice(0, 300)}`);
    return 'page, client modules and the seed VJP graph as SVG';
  });
  await check('HEALTHCHECK reports healthy', async () => {
    if (eng.podman) {
      const r = eng.exec(['healthcheck', 'run', name], { timeoutMs: 30_000 });
      assert(r.code === 0, `podman healthcheck run: exit ${r.code} ${r.stdout}${r.stderr}`.trim());
      return 'podman healthcheck run: healthy';
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = eng.exec(['inspect', '--format', '{{.State.Health.Status}}', name], { timeoutMs: 20_000 }).stdout.trim();
      if (st === 'healthy') return 'docker: healthy';
      assert(Date.now() < deadline && st !== 'unhealthy', `health status "${st}"`);
      await sleep(1_000);
    }
  });
  await check('SIGTERM drains an in-flight request, then exit 0', async () => {
    // Size the slow request from a short probe so that it runs ~3 s on this machine, whatever its speed.
    const n = 1024;
    let probe;
    for (let i = 0; i < 2; i++) {
      // the second probe runs warm (JIT, OpenBLAS buffers), like the real one
      probe = await postChain(base, n, 4);
      assert(probe.status === 200, `probe request answered ${probe.status}: ${probe.text.slice(0, 300)}`);
      assert(probe.s === n, `probe: sum = ${probe.s}, want ${n}`);
    }
    const perMatmul = Math.max(1, probe.ms / 4);
    const k = Math.max(8, Math.min(4000, Math.ceil(3000 / perMatmul)));
    const inFlight = postChain(base, n, k);
    await sleep(Math.min(1_000, Math.max(300, (k * perMatmul) / 4)));
    const tKill = Date.now();
    const kill = eng.exec(['kill', '--signal', 'TERM', name], { timeoutMs: 20_000 });
    assert(kill.code === 0, `kill --signal TERM failed: ${kill.stderr.trim()}`);
    const res = await inFlight;
    assert(res.status === 200, `in-flight request answered ${res.status} after SIGTERM: ${res.text.slice(0, 300)}`);
    assert(res.s === n, `in-flight request: sum = ${res.s}, want ${n}`);
    assert(res.end > tKill, 'the request finished before SIGTERM was sent, so nothing was drained; the probe misjudged its length');
    const waited = eng.exec(['wait', name], { timeoutMs: 60_000 });
    const tExit = Date.now();
    assert(waited.code === 0 && !waited.timedOut, `wait failed: ${waited.stderr.trim()}`);
    const exitCode = Number(waited.stdout.trim().split('\n').pop());
    assert(exitCode === 0, `container exited with ${exitCode}; logs:\n${containerLogs(eng, name)}`);
    // Draining ends when the last in-flight request is answered, not at the shutdown time limit: a keep-alive
    // connection that just carried a drained response must not hold the process (pods would always take the whole
    // grace period to stop). Responses sent while draining need `Connection: close`.
    assert(tExit - res.end < 5_000, `the container exited ${tExit - res.end} ms after the last response, i.e. at the ` +
      'shutdown time limit: the drained keep-alive connection kept the server open (send Connection: close while draining)');
    return `${k} chained 1024² matmuls (${res.ms} ms), SIGTERM after ${tKill - (res.end - res.ms)} ms, answered 200 ` +
      `${res.end - tKill} ms after it; exit 0 ${tExit - tKill} ms after SIGTERM`;
  });
}

function renderKubeFile(port, modelsDir, deployName) {
  let text = readFileSync(KUBE_FILE, 'utf8');
  const subst = [
    [/^(\s*hostPort:) 8080$/m, `$1 ${port}`],
    [/^(\s*path:) \/var\/lib\/gradserve\/models$/m, `$1 ${modelsDir}`],
    [/^(\s*image:) localhost\/gradserve:latest$/m, `$1 ${TAG}`],
    [/^(metadata:\n\s+name:) gradserve$/m, `$1 ${deployName}`],
  ];
  for (const [re, to] of subst) {
    assert(re.test(text), `${path.relative(ROOT, KUBE_FILE)} no longer has ${re}; update renderKubeFile`);
    text = text.replace(re, to);
  }
  return text;
}

async function testKubePlay(eng) {
  const name = 'podman kube play deploy/kubernetes (1 replica)';
  if (!eng.podman) return skip(name, 'docker has no kube play; use kubectl apply -k deploy/kubernetes on a cluster');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gradserve-kube-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const models = path.join(dir, 'models');
  const deployName = `gradserve-ctest-${RUN_ID}`;
  const ctr = `${deployName}-pod-0-gradserve`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const rendered = path.join(dir, 'gradserve.yaml');
  await check(name, async () => {
    // the container user (uid 1000) must read the repository, and nothing may write to it
    mkdirSync(models);
    writeFileSync(path.join(models, 'linear.json'), JSON.stringify({ graph: SEED.graph }));
    chmodSync(dir, 0o755);
    chmodSync(models, 0o755);
    chmodSync(path.join(models, 'linear.json'), 0o644);
    writeFileSync(rendered, renderKubeFile(port, models, deployName));
    cleanups.push(() => eng.exec(['kube', 'down', rendered], { timeoutMs: 120_000 }));
    const play = eng.exec(['kube', 'play', '--configmap', CONFIGMAP_FILE, rendered], { timeoutMs: 180_000 });
    assert(play.code === 0, `kube play failed: ${play.stderr.trim()}`);
    const ok = await waitReady(`${base}/v2/health/ready`, { timeoutMs: 90_000, alive: () => containerRunning(eng, ctr) });
    const why = containerRunning(eng, ctr) ? `not ready through 127.0.0.1:${port} within 90 s` : 'the pod\'s container exited before it was ready';
    assert(ok, `${why}; logs:\n${containerLogs(eng, ctr)}`);
    await checkSeedVjp(base);
    const meta = await fetch(`${base}/v2/models/linear`, { signal: AbortSignal.timeout(10_000) });
    const metaText = await meta.text();
    assert(meta.status === 200, `GET /v2/models/linear answered ${meta.status}: ${metaText.slice(0, 300)}`);
    const inputs = (JSON.parse(metaText).inputs ?? []).map((i) => i.name).sort().join(',');
    assert(inputs === 'w,x', `model metadata lists inputs "${inputs}", want w,x`);
    const oipTensor = (name, rows) => ({ name, shape: [rows.length, rows[0].length], datatype: 'FP32', data: rows.flat() });
    const infer = await fetch(`${base}/v2/models/linear/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [oipTensor('x', SEED.x), oipTensor('w', SEED.w)] }),
      signal: AbortSignal.timeout(15_000),
    });
    const inferText = await infer.text();
    assert(infer.status === 200, `POST /v2/models/linear/infer answered ${infer.status}: ${inferText.slice(0, 300)}`);
    expectTensor(JSON.parse(inferText).outputs?.find((o) => o.name === 'y'), matmul(SEED.x, SEED.w), 'infer outputs y');
    const env = eng.exec(['exec', ctr, 'printenv', 'GRADSERVE_SERVER_MEMORY'], { timeoutMs: 20_000 }).stdout.trim();
    const cm = /GRADSERVE_SERVER_MEMORY:\s*(\S+)/.exec(readFileSync(CONFIGMAP_FILE, 'utf8'))?.[1];
    assert(env === cm, `GRADSERVE_SERVER_MEMORY in the pod is "${env}", the ConfigMap says "${cm}"`);
    const write = eng.exec(['exec', ctr, 'sh', '-c', 'touch /models/probe'], { timeoutMs: 20_000 });
    assert(write.code !== 0, 'the model repository is writable from the pod; it must be mounted read-only');
    const rootWrite = eng.exec(['exec', ctr, 'sh', '-c', 'touch /app/probe'], { timeoutMs: 20_000 });
    assert(rootWrite.code !== 0, 'the root filesystem is writable from the pod; readOnlyRootFilesystem is not applied');
    return `port ${port}: ready, seed VJP ok, /v2/models/linear metadata and infer from the read-only repository, read-only root, ConfigMap applied`;
  });
  await check('podman kube down removes the pod', () => {
    const down = eng.exec(['kube', 'down', rendered], { timeoutMs: 120_000 });
    assert(down.code === 0, `kube down failed: ${down.stderr.trim()}`);
    const left = eng.exec(['pod', 'exists', `${deployName}-pod-0`], { timeoutMs: 20_000 });
    assert(left.code !== 0, `pod ${deployName}-pod-0 still exists`);
  });
}

function checkImage(eng, buildSeconds) {
  return check('image size <= 300 MB and runtime metadata', () => {
    const size = imageSizeBytes(eng, TAG);
    assert(Number.isFinite(size), `cannot inspect ${TAG}`);
    const fmt = eng.podman
      ? '{{.Config.User}}\t{{json .Config.ExposedPorts}}\t{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}\t{{json .HealthCheck}}'
      : '{{.Config.User}}\t{{json .Config.ExposedPorts}}\t{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}\t{{json .Config.Healthcheck}}';
    const [user, ports, entry, cmd, health] = eng.exec(['image', 'inspect', '--format', fmt, TAG], { timeoutMs: 30_000 }).stdout.replace(/\n$/, '').split('\t');
    assert(size <= MAX_IMAGE_BYTES, `image is ${(size / 1e6).toFixed(1)} MB, over 300 MB`);
    assert(user !== '' && !/^(0|root)(:|$)/.test(user), `image runs as "${user || 'root'}", want a non-root user`);
    assert(ports.includes('8080/tcp'), `exposed ports ${ports}, want 8080/tcp`);
    const argv = [...JSON.parse(entry || '[]'), ...JSON.parse(cmd || '[]')];
    assert(JSON.stringify(argv) === JSON.stringify(['node', '--initial-old-space-size=128', 'dist/cli.js', 'serve']), `entrypoint+cmd ${JSON.stringify(argv)}`);
    assert(health.includes('/v2/health/ready'), `HEALTHCHECK ${health}, want one on /v2/health/ready`);
    // The image runs the Node major its Dockerfile names, and holds no package manager.
    const want = baseImage(ROOT).match(/node:(\d+)/)[1];
    const probe = eng.exec(['run', '--rm', '--entrypoint', 'node', TAG, '-p',
      "process.versions.node + ' ' + require('fs').existsSync('/usr/local/lib/node_modules/npm')"], { timeoutMs: 60_000 });
    const [nodeVersion, hasNpm] = probe.stdout.trim().split(' ');
    assert(probe.code === 0 && nodeVersion?.split('.')[0] === want, `node in the image: ${probe.stdout}${probe.stderr}`.trim());
    assert(hasNpm === 'false', 'the image holds npm');
    return `${(size / 1e6).toFixed(1)} MB (${(size / 2 ** 20).toFixed(1)} MiB), Node ${nodeVersion}, user ${user}` +
      (buildSeconds === undefined ? '' : `, build ${buildSeconds.toFixed(0)} s`);
  });
}

async function main() {
  const t0 = Date.now();
  let eng;
  const found = await check('container engine', () => {
    eng = detectEngine(ROOT, log);
    const v = eng.exec(['--version'], { timeoutMs: 20_000 }).stdout.trim();
    return v;
  });
  if (found) {
    let buildSeconds;
    let haveImage;
    if (process.env.GRADSERVE_SKIP_BUILD === '1' && imageExists(eng, TAG)) {
      skip('build', `GRADSERVE_SKIP_BUILD=1: testing the existing ${TAG}`);
      haveImage = true;
    } else {
      haveImage = await check(`build ${TAG}`, () => {
        const b = build(eng, ROOT, TAG);
        assert(b.ok, b.timedOut ? 'build timed out (30 min)' : 'build failed (output above)');
        buildSeconds = b.seconds;
        return `${b.seconds.toFixed(0)} s`;
      });
    }
    if (haveImage) {
      await checkImage(eng, buildSeconds);
      await testRunningContainer(eng);
      cleanup();
      await testKubePlay(eng);
    }
  }
  cleanup();

  const failed = results.filter((r) => r.status === 'FAIL');
  console.log(`\n== container test summary (${((Date.now() - t0) / 1000).toFixed(0)} s) ==`);
  for (const r of results) console.log(`${r.status.padEnd(4)}  ${r.name}${r.detail ? ` - ${r.detail.split('\n')[0]}` : ''}`);
  console.log(failed.length === 0 ? `\nall ${results.length} checks passed` : `\n${failed.length} of ${results.length} checks FAILED`);
  process.exit(failed.length === 0 ? 0 : 1);
}

main().catch((e) => {
  log(`unexpected error: ${e.stack ?? e}`);
  cleanup();
  process.exit(1);
});
