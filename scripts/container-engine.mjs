// Shared by scripts/test-container.mjs and bench/scaleout: find a container engine that works on this machine (docker
// with a running engine, else podman), prepare podman when the machine lacks pieces, build the image, run and clean up
// containers. Every external command has a time bound.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** The official Node image the Dockerfile's stages start from (`FROM node:<major>-bookworm-slim`), fully qualified. */
export function baseImage(repoRoot) {
  const from = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8').match(/^FROM (node:[^\s]+)/m);
  if (!from) throw new Error('Dockerfile: no FROM node:<tag> stage');
  return `docker.io/library/${from[1]}`;
}

/** Runs a command to completion (bounded); never throws for a non-zero exit, the caller decides. */
export function run(cmd, args, { timeoutMs = 60_000, input, quiet = true, env } = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    input,
    env: env ?? process.env,
    stdio: [input === undefined ? 'ignore' : 'pipe', quiet ? 'pipe' : 'inherit', quiet ? 'pipe' : 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const timedOut = r.error?.code === 'ETIMEDOUT' || (r.signal === 'SIGKILL' && r.status === null);
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut, error: r.error };
}

function has(cmd) {
  return run('sh', ['-c', `command -v ${cmd}`], { timeoutMs: 5_000 }).code === 0;
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * podman needs two things that a --no-install-recommends install of it lacks: iptables (netavark publishes ports
 * with it) and catatonit (what `--init` runs). Installs them from Debian when running as root.
 */
function ensurePodmanExtras(log) {
  const need = [];
  if (!has('iptables') && !has('nft')) need.push('iptables');
  const initPaths = ['/usr/libexec/podman/catatonit', '/usr/bin/catatonit', '/usr/libexec/catatonit/catatonit'];
  if (!initPaths.some((p) => existsSync(p))) need.push('catatonit');
  if (need.length === 0) return;
  if (!isRoot() || !has('apt-get')) {
    log(`podman may lack ${need.join(', ')} (port publishing / --init); install them if the test fails`);
    return;
  }
  log(`installing ${need.join(', ')} for podman`);
  run('apt-get', ['update', '-qq'], { timeoutMs: 300_000 });
  const r = run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...need], {
    timeoutMs: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.code !== 0) log(`apt-get install ${need.join(' ')} failed: ${r.stderr.trim().split('\n').pop()}`);
}

/**
 * Picks docker when its engine answers, else podman. When podman is missing or lacks the base image and the project's
 * shared tooling is present beside the repository (../shared/tools/container-base.sh), runs it with NODE_MAJOR set to
 * the Dockerfile's Node major: it installs podman and builds a local stand-in for node:<major>-bookworm-slim on
 * machines without registry access.
 */
export function detectEngine(repoRoot, log = () => {}) {
  const forced = process.env.GRADSERVE_CONTAINER_ENGINE;
  if (forced !== 'podman' && has('docker') && run('docker', ['info'], { timeoutMs: 20_000 }).code === 0) {
    if (forced === undefined || forced === 'docker') return engine('docker');
  }
  const baseScript = path.resolve(repoRoot, '..', 'shared', 'tools', 'container-base.sh');
  const base = baseImage(repoRoot);
  const major = base.match(/node:(\d+)/)?.[1] ?? '';
  const podmanReady = () =>
    has('podman') && run('podman', ['image', 'exists', base], { timeoutMs: 30_000 }).code === 0;
  if (!podmanReady() && existsSync(baseScript)) {
    log(`running NODE_MAJOR=${major} ${baseScript} (podman + local ${base}; takes a few minutes the first time)`);
    const r = run('bash', [baseScript], {
      timeoutMs: 30 * 60_000,
      quiet: false,
      env: { ...process.env, NODE_MAJOR: major },
    });
    if (r.code !== 0) throw new Error(`${baseScript} failed (exit ${r.code})`);
  }
  if (!has('podman')) throw new Error('no container engine: docker has no running engine and podman is not installed');
  ensurePodmanExtras(log);
  return engine('podman');
}

function engine(name) {
  const podman = name === 'podman';
  return {
    name,
    podman,
    /** podman never pulls here (no registry access needed); docker keeps its default (use the local image if any). */
    buildFlags: podman ? ['--pull=never', '--format', 'docker'] : [],
    exec: (args, opts) => run(name, args, opts),
  };
}

export function build(eng, repoRoot, tag, { timeoutMs = 30 * 60_000 } = {}) {
  const t0 = Date.now();
  const r = eng.exec(['build', ...eng.buildFlags, '-t', tag, repoRoot], { timeoutMs, quiet: false });
  return { ok: r.code === 0, seconds: (Date.now() - t0) / 1000, timedOut: r.timedOut };
}

export function imageSizeBytes(eng, tag) {
  const r = eng.exec(['image', 'inspect', '--format', '{{.Size}}', tag], { timeoutMs: 30_000 });
  return r.code === 0 ? Number(r.stdout.trim()) : NaN;
}

export function imageExists(eng, tag) {
  return eng.exec(['image', 'inspect', tag], { timeoutMs: 30_000 }).code === 0;
}

export function removeContainer(eng, name) {
  eng.exec(eng.podman ? ['rm', '-f', '-t', '0', name] : ['rm', '-f', name], { timeoutMs: 60_000 });
}

export function containerLogs(eng, name, tail = 40) {
  const r = eng.exec(['logs', '--tail', String(tail), name], { timeoutMs: 20_000 });
  return `${r.stdout}${r.stderr}`.trim();
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls GET url until it answers 200 or the deadline passes; `alive()` can end the wait early (container died). */
export async function waitReady(url, { timeoutMs = 90_000, alive = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return true;
    } catch {
      // not listening yet
    }
    if (!alive()) return false;
    await sleep(250);
  }
  return false;
}

export function containerRunning(eng, name) {
  const r = eng.exec(['inspect', '--format', '{{.State.Running}}', name], { timeoutMs: 20_000 });
  return r.code === 0 && r.stdout.trim() === 'true';
}
