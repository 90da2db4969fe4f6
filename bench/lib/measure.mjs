// Shared by bench/engine and bench/http: order statistics, peers in child processes that time steps on demand
// (PyTorch at a given thread setting, gradserve with a given environment), interleaved rounds, the machine's
// description and the closing table of targets.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank quantile (q in [0, 1]) of a sample; the median of an even sample is the mean of the middle two. */
export function quantile(xs, q) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  if (q === 0.5) return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
export const median = (xs) => quantile(xs, 0.5);
/** {n, p50, p99, max} of a sample of times. p99 of fewer than 100 samples is one of the largest few: say n with it. */
export const summary = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: Math.max(...xs) });

/** A time in ms with about three significant digits. */
export function ms(v) {
  if (!Number.isFinite(v)) return String(v);
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}
export const ratio = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : String(v));

export const argOf = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = process.argv[i + 1];
  return typeof dflt === 'number' ? Number(v) : v;
};
export const flag = (name) => process.argv.includes(`--${name}`);

/**
 * A child process that times a workload on demand: it prints one JSON line when ready, then answers each line "N" on
 * its stdin with {"times": [ms, ...]} of N steps (after 2 unmeasured ones), and optionally "cpu": the CPU time of the
 * process over those N steps (every thread, ms), summed into `cpuMs` over `cpuSteps` steps. bench/lib/torch_loop.py
 * speaks this for the PyTorch peers; the gradserve workers of bench/engine and bench/models speak it too
 * (`serveSteps`).
 */
export class LinePeer {
  constructor(label, cmd, args, env = {}) {
    this.label = label;
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.stderr = '';
    this.child.stderr.on('data', (c) => { this.stderr = (this.stderr + c).slice(-4000); });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
    this.cpuMs = 0;
    this.cpuSteps = 0;
  }

  async next() {
    const r = await this.lines.next();
    if (r.done) throw new Error(`${this.label} exited: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return JSON.parse(r.value);
  }

  /** Resolves with the ready line (the peer's description). */
  async ready() {
    this.info = await this.next();
    return this.info;
  }

  /** Times n steps; resolves with the times in ms. */
  async run(n) {
    this.child.stdin.write(`${n}\n`);
    const r = await this.next();
    if (typeof r.cpu === 'number') {
      this.cpuMs += r.cpu;
      this.cpuSteps += r.times.length;
    }
    return r.times;
  }

  /** CPU time per step (ms, every thread of the peer), for peers that report it. */
  cpuPerStep() {
    return this.cpuSteps > 0 ? this.cpuMs / this.cpuSteps : NaN;
  }

  close() {
    this.child.stdin.end();
    return new Promise((r) => {
      if (this.child.exitCode !== null) r();
      else this.child.on('exit', r);
    });
  }
}

/**
 * The peer side of LinePeer in a Node child process: prints `info` as the ready line, then answers each line "N" with
 * the times of N awaited calls of `step` (after 2 unmeasured ones) and the process's CPU time over them.
 */
export async function serveSteps(step, info) {
  console.log(JSON.stringify({ ready: true, ...info }));
  for await (const line of createInterface({ input: process.stdin })) {
    const n = Number(line);
    if (!(n > 0)) continue;
    for (let i = 0; i < 2; i++) await step();
    const times = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(JSON.stringify({ times, cpu: (cpu.user + cpu.system) / 1000 }));
  }
}

/**
 * node's flags for a gradserve peer process: the initial heap size the server runs with and the docs recommend for a
 * process that calls the engine in a loop (src/server/config.ts HEAP_FLAG; node's default heap makes full
 * collections set the p99 of a steady loop).
 */
export const GRADSERVE_NODE_FLAGS = [(await import('../../dist/server/config.js')).HEAP_FLAG];

export const python = process.env.PYTHON ?? '/usr/bin/python3';
export const TORCH_THREADS = [1, 2];

/**
 * A PyTorch peer at `threads` (`args`: the script's full argument list, `threads` and `--serve` included):
 * torch.set_num_threads in the script, and the BLAS/OpenMP variables in its environment (Debian's torch runs
 * matmuls in OpenBLAS, which torch.set_num_threads does not reach).
 */
export function torchPeer(script, args, threads) {
  const t = String(threads);
  return new LinePeer(`PyTorch ${threads} thread${threads > 1 ? 's' : ''}`, python, [script, ...args.map(String)], {
    OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t,
  });
}

/**
 * The order of n peers in round r: a balanced (Williams) Latin square, 0, 1, n-1, 2, n-2, ... shifted by r. Over n
 * rounds every peer runs in every position and, for even n, right after every other peer exactly once. A plain
 * rotation (0 1 2 3, 1 2 3 0, ...) keeps each peer behind the same neighbour in every round, so whatever one peer
 * leaves behind (BLAS threads still spinning, a cold cache) always lands on the same next one.
 */
export function roundOrder(n, r) {
  const base = [0];
  for (let lo = 1, hi = n - 1; base.length < n; lo++, hi--) {
    base.push(lo);
    if (base.length < n) base.push(hi);
  }
  return base.map((i) => (i + r) % n);
}

/** Busy and total jiffies of the whole machine so far (/proc/stat), or undefined off Linux. */
function cpuJiffies() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/**
 * Pauses between two segments until the machine is quiet: at least `minMs`, then until a 50 ms window in which all
 * cores together were busy for less than a quarter of a core, at most `maxMs`. A peer's BLAS threads keep spinning
 * after its last step (OpenBLAS's default is ~0.1 s: PyTorch at 2 threads holds a core for 100-110 ms after every
 * segment here), and a fixed short pause hands that spinning core to whichever peer runs next.
 */
export async function settle(minMs = 50, maxMs = 1000) {
  const t0 = performance.now();
  await sleep(minMs);
  let last = cpuJiffies();
  if (last === undefined) return;
  const cores = os.cpus().length;
  while (performance.now() - t0 < maxMs) {
    await sleep(50);
    const now = cpuJiffies();
    if (now === undefined) return;
    const busy = (now.busy - last.busy) / Math.max(1, now.total - last.total) * cores;
    last = now;
    if (busy < 0.25) return;
  }
}

/**
 * Interleaved measurement: `reps` steps of every peer (or the peer's own `reps`) in `rounds` rounds, in a balanced
 * order (`roundOrder`), settling between segments (`settle`: the spinning BLAS threads of the last peer go idle), so
 * drifting load from other processes on a shared machine falls on every peer alike. A peer is {label, run(n) ->
 * Promise<ms[]>, reps?}. Returns label -> times.
 */
export async function interleave(peers, reps, rounds, pauseMs = 50) {
  const out = new Map(peers.map((p) => [p.label, []]));
  for (let r = 0; r < rounds; r++) {
    for (const i of roundOrder(peers.length, r)) {
      const p = peers[i];
      out.get(p.label).push(...(await p.run(Math.max(1, Math.ceil((p.reps ?? reps) / rounds)))));
      await settle(pauseMs);
    }
  }
  return out;
}

/** Picks the faster thread setting by median; returns {best, rows} with rows per setting. */
export function bestOf(results) {
  const rows = [...results].map(([label, times]) => ({ label, ...summary(times) }));
  const best = rows.reduce((a, b) => (b.p50 < a.p50 ? b : a));
  return { best, rows };
}

export function torchVersion() {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : `unavailable (${python})`;
}

/** Date, machine and load, for the head of a benchmark's output and its README. */
export function machine() {
  let cpu = os.cpus()[0]?.model ?? '?';
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch { /* not Linux */ }
  const load = os.loadavg().map((l) => l.toFixed(2)).join(', ');
  const git = (args) => spawnSync('git', args, { encoding: 'utf8', cwd: new URL('.', import.meta.url).pathname });
  const head = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', 'src', 'binding', 'native']);
  const commit = head.status === 0 ? `${head.stdout.trim()}${dirty.stdout.trim() ? ' + uncommitted changes in src/binding/native' : ''}` : '?';
  return { date: new Date().toISOString(), nproc: os.availableParallelism(), cpu, load, node: process.version, torch: torchVersion(), commit };
}

export function printMachine(m = machine()) {
  console.log(`date ${m.date}; ${m.nproc} cores (${m.cpu}); load average ${m.load}; Node ${m.node}; PyTorch ${m.torch}; commit ${m.commit}`);
  const l1 = Number(m.load.split(',')[0]);
  if (l1 > 0.5 * m.nproc) console.log(`note: 1-minute load ${l1.toFixed(2)} on ${m.nproc} cores: other work is running, expect noise`);
  return m;
}

export const loadNow = () => os.loadavg().map((l) => l.toFixed(2)).join(', ');

/**
 * The closing table: rows {what, value, target, met} (met true/false/undefined for information only), printed as a
 * Markdown table so it can go into a README as is.
 */
export function printTargets(title, rows) {
  console.log(`\n## ${title}\n`);
  console.log('| figure | value | target | met |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.what} | ${r.value} | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : 'no'} |`);
}
