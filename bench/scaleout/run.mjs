#!/usr/bin/env node
// Scale-out evidence: throughput of a medium /v1/grad request with 1 and then 2 gradserve replicas (containers, each
// limited to the same CPU share, like pods with a CPU limit) behind nginx on loopback, measured with autocannon.
// Prints req/s and latency per replica count and the ratio. Bounded: every run has a fixed duration and timeouts.
//
//   node bench/scaleout/run.mjs                     # defaults below
//   REPLICAS=1,2,3 CPUS=0.5 DURATION=15 node bench/scaleout/run.mjs
//
// Env: REPLICAS (1,2); CPUS per replica (a quarter of the machine's CPUs, at most 1); DURATION seconds per
// measurement (6); CONNECTIONS (16); ROUNDS (5: the replica counts are measured in turn this many times and medians
// are reported, so that drift in the machine's background load hits every count alike); GRADSERVE_IMAGE
// (localhost/gradserve:latest; built when missing).
// Needs root for installing nginx (Debian package) when it is missing; everything else runs as any user with podman.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import {
  build, containerLogs, containerRunning, detectEngine, freePort, imageExists, removeContainer, run, sleep, waitReady,
} from '../../scripts/container-engine.mjs';
import { gradRequest } from './request.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TAG = process.env.GRADSERVE_IMAGE ?? 'localhost/gradserve:latest';
const REPLICAS = (process.env.REPLICAS ?? '1,2').split(',').map(Number);
// Replicas together must leave CPU to the load generator and nginx, which run on the same machine: otherwise the
// machine, not the replica count, is the limit. A quarter of the cores each (at most 1) leaves half for them at 2.
const CPUS = process.env.CPUS ?? String(Math.min(1, os.cpus().length / 4));
const DURATION = Number(process.env.DURATION ?? 6);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 16);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const log = (m) => console.log(`[scaleout] ${m}`);

const cleanups = [];
const cleanup = () => {
  while (cleanups.length) {
    try {
      cleanups.pop()();
    } catch (e) {
      log(`cleanup: ${e.message}`);
    }
  }
};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(1); });

function nginxBinary() {
  for (const p of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']) if (existsSync(p)) return p;
  return undefined;
}

/** Installs Debian's nginx without letting its package scripts start a system-wide server on port 80. */
function ensureNginx() {
  if (nginxBinary()) return nginxBinary();
  if (process.getuid?.() !== 0) throw new Error('nginx is missing; install it (apt-get install nginx) or run as root');
  log('installing nginx (Debian package)');
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    run('apt-get', ['update', '-qq'], { timeoutMs: 300_000 });
    const r = run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx'], {
      timeoutMs: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.code !== 0) throw new Error(`apt-get install nginx failed: ${r.stderr.trim()}`);
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  return nginxBinary();
}

/** Starts nginx in the foreground on 127.0.0.1:lbPort, balancing over the given loopback ports. */
async function startNginx(bin, lbPort, upstreamPorts) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gradserve-nginx-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['logs', 'tmp']) mkdirSync(path.join(dir, d), { mode: 0o777 });
  const asRoot = process.getuid?.() === 0;
  const conf = `
${asRoot ? 'user root;' : ''}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  # Bodies and responses of this benchmark fit in memory buffers: no temp files on the request path.
  client_max_body_size 64m;
  client_body_buffer_size 4m;
  proxy_buffers 16 256k;
  proxy_buffer_size 256k;
  upstream gradserve {
    # least_conn keeps a slow request from queueing others behind it on one replica
    least_conn;
${upstreamPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${lbPort};
    location / {
      proxy_pass http://gradserve;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 60s;
    }
  }
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const test = run(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-t'], { timeoutMs: 20_000 });
  if (test.code !== 0) throw new Error(`nginx config rejected: ${test.stderr}`);
  const child = spawn(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGQUIT'));
  if (!(await waitReady(`http://127.0.0.1:${lbPort}/v2/health/ready`, { timeoutMs: 30_000, alive: () => child.exitCode === null }))) {
    throw new Error('nginx did not come up');
  }
  return child;
}

async function startReplicas(eng, n) {
  const ports = [];
  for (let i = 0; i < n; i++) {
    const name = `gradserve-scale-${process.pid}-${n}-${i}`;
    const port = await freePort();
    cleanups.push(() => removeContainer(eng, name));
    // One BLAS thread and one kernel thread per CPU of the share: replicas scale by processes, not threads.
    const workers = String(Math.max(1, Math.round(Number(CPUS))));
    const r = eng.exec(['run', '-d', '--init', '--name', name, '-p', `127.0.0.1:${port}:8080`, `--cpus=${CPUS}`,
      '-e', 'OPENBLAS_NUM_THREADS=1', '-e', `GRADSERVE_WORKERS=${workers}`, '-e', `UV_THREADPOOL_SIZE=${workers}`,
      '-e', 'GRADSERVE_LOG_LEVEL=warn', TAG], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`starting replica ${i}: ${r.stderr.trim()}`);
    if (!(await waitReady(`http://127.0.0.1:${port}/v2/health/ready`, { timeoutMs: 90_000, alive: () => containerRunning(eng, name) }))) {
      throw new Error(`replica ${i} not ready:\n${containerLogs(eng, name)}`);
    }
    ports.push(port);
  }
  return ports;
}

function load(url, body, seconds) {
  return new Promise((resolve, reject) => {
    autocannon({
      url,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      connections: CONNECTIONS,
      duration: seconds,
      timeout: 30,
    }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function measure(nginx, ports, n, body) {
  const lbPort = await freePort();
  const lb = await startNginx(nginx, lbPort, ports.slice(0, n));
  try {
    const url = `http://127.0.0.1:${lbPort}/v1/grad`;
    const check = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(30_000) });
    const checkBody = await check.json();
    if (check.status !== 200 || checkBody.gradients?.w1?.shape?.join() !== '256,256') {
      throw new Error(`sample /v1/grad through nginx answered ${check.status}: ${JSON.stringify(checkBody).slice(0, 300)}`);
    }
    await load(url, body, 3); // warm-up: JIT, connection pools, OpenBLAS buffers
    const load0 = os.loadavg()[0];
    const res = await load(url, body, DURATION);
    const bad = res.non2xx + res.errors + res.timeouts;
    return { replicas: n, reqPerSec: res.requests.average, p50: res.latency.p50, p99: res.latency.p99, total: res.requests.total, bad, loadAvgBefore: load0 };
  } finally {
    lb.kill('SIGQUIT');
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const eng = detectEngine(ROOT, log);
  if (!imageExists(eng, TAG)) {
    log(`building ${TAG}`);
    if (!build(eng, ROOT, TAG).ok) throw new Error('image build failed');
  }
  const nginx = ensureNginx();
  const { body, description } = gradRequest();
  log(`request: ${description}; ${(body.length / 1024).toFixed(0)} KiB body`);
  log(`${CONNECTIONS} connections, ${DURATION} s per run, --cpus=${CPUS} per replica, ${os.cpus().length} CPUs on this machine`);
  const busy = os.loadavg()[0];
  if (busy > os.cpus().length / 2) log(`WARNING: load average ${busy.toFixed(1)} on ${os.cpus().length} CPUs before starting: other work competes for the cores, so the ratio understates scale-out`);
  const ports = await startReplicas(eng, Math.max(...REPLICAS));
  const runs = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const n of REPLICAS) {
      const r = await measure(nginx, ports, n, body);
      runs.push(r);
      log(`round ${round}, ${n} replica(s): ${r.reqPerSec.toFixed(1)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.bad} non-2xx/errors (load avg ${r.loadAvgBefore.toFixed(1)})`);
    }
  }
  const rows = REPLICAS.map((n) => {
    const mine = runs.filter((r) => r.replicas === n);
    return {
      replicas: n,
      reqPerSec: median(mine.map((r) => r.reqPerSec)),
      p50: median(mine.map((r) => r.p50)),
      p99: median(mine.map((r) => r.p99)),
      bad: mine.reduce((s, r) => s + r.bad, 0),
    };
  });
  console.log(`\nmedian of ${ROUNDS} round(s)\nreplicas  req/s     p50 ms  p99 ms  errors  vs 1 replica`);
  const base = rows[0].reqPerSec;
  for (const r of rows) {
    console.log(`${String(r.replicas).padEnd(9)} ${r.reqPerSec.toFixed(1).padEnd(9)} ${String(r.p50).padEnd(7)} ${String(r.p99).padEnd(7)} ${String(r.bad).padEnd(7)} ${(r.reqPerSec / base).toFixed(2)}x`);
  }
  // Each round measures every replica count back to back, so a ratio within a round is the least disturbed by
  // background load that drifts between rounds.
  for (const r of rows.slice(1)) {
    const ratios = [];
    for (let round = 0; round < ROUNDS; round++) {
      const inRound = runs.slice(round * REPLICAS.length, (round + 1) * REPLICAS.length);
      ratios.push(inRound.find((x) => x.replicas === r.replicas).reqPerSec / inRound.find((x) => x.replicas === REPLICAS[0]).reqPerSec);
    }
    r.roundRatios = ratios;
    console.log(`${r.replicas} vs ${REPLICAS[0]} replica(s), per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}; median ${median(ratios).toFixed(2)}x`);
  }
  const out = path.join(ROOT, '.bench-out');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'scaleout.json'), JSON.stringify({ description, cpusPerReplica: CPUS, connections: CONNECTIONS, durationS: DURATION, rounds: ROUNDS, hostCpus: os.cpus().length, rows, runs }, null, 2));
  if (rows.some((r) => r.bad > 0)) process.exitCode = 1;
}

main()
  .catch((e) => {
    log(`failed: ${e.message}`);
    process.exitCode = 1;
  })
  .finally(cleanup);
