#!/usr/bin/env node
/**
 * Health prober for bench/http/run.mjs, in its own process so that the load generator's event loop does not delay
 * it: GET <url> on one keep-alive connection every <interval> ms for <seconds> s, then prints {"times": [ms, ...]}.
 *
 *   node bench/http/probe.mjs http://127.0.0.1:8080/v2/health/live 10 10
 */
import http from 'node:http';

const [url, seconds = '10', interval = '10'] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const get = () => new Promise((resolve, reject) => {
  http.get(url, { agent }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
  }).on('error', reject);
});
await get();
const times = [];
const end = performance.now() + Number(seconds) * 1000;
while (performance.now() < end) {
  const t0 = performance.now();
  await get();
  times.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, Number(interval)));
}
agent.destroy();
process.stdout.write(`${JSON.stringify({ times })}\n`);
