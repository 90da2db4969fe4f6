#!/usr/bin/env node
/**
 * Top functions of a V8 .cpuprofile by self time and by inclusive time (each function counted once per sample).
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/cli.js serve --port 8080 --log-level silent   # load it, then SIGINT
 *   node bench/http/profile-summary.mjs /tmp/prof/CPU.*.cpuprofile [40]
 */
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const N = Number(process.argv[3] ?? 40);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const dt = new Map();
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const key = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*\/(node_modules|dist)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
const self = new Map(), incl = new Map();
let total = 0;
for (const [id, t] of dt) {
  total += t;
  const n = byId.get(id);
  self.set(key(n), (self.get(key(n)) ?? 0) + t);
  const seen = new Set();
  for (let x = id; x !== undefined; x = parent.get(x)) { const k = key(byId.get(x)); if (!seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) ?? 0) + t); } }
}
const show = (m, title) => { console.log(`\n== ${title} (total ${(total/1e3).toFixed(0)} ms)`); [...m].sort((a, b) => b[1] - a[1]).slice(0, N).forEach(([k, t]) => console.log(`${(100*t/total).toFixed(1).padStart(5)}%  ${k}`)); };
show(self, 'self'); show(incl, 'inclusive');
