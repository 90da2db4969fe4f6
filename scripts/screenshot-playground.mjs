// Regenerates docs/playground.png, the README's picture of the playground: starts `gradserve serve` (dist/, so run
// `npm run build` first) on a free loopback port, opens /playground in headless Chromium (puppeteer-core with the
// system executable: apt-get install chromium; GRADSERVE_CHROMIUM for another), runs an example and saves the view.
//   node scripts/screenshot-playground.mjs [--example mlp] [--operation jacobian] [--out docs/playground.png]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
const example = arg('example', 'mlp');
const operation = arg('operation', 'jacobian');
const out = arg('out', `${root}docs/playground.png`);
const chromium = process.env.GRADSERVE_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(chromium)) throw new Error(`no Chromium at ${chromium}: apt-get install -y chromium, or set GRADSERVE_CHROMIUM`);

const port = await new Promise((resolve, reject) => {
  const s = net.createServer().on('error', reject).listen(0, '127.0.0.1', () => {
    const { port: p } = s.address();
    s.close(() => resolve(p));
  });
});
const server = spawn(process.execPath, ['dist/cli.js', 'serve', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
const base = `http://127.0.0.1:${port}`;
let browser;
try {
  for (let i = 0; ; i++) {
    const ok = await fetch(`${base}/v2/health/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 100) throw new Error('the server did not get ready');
    await new Promise((r) => setTimeout(r, 200));
  }
  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 1160, deviceScaleFactor: 1 });
  await page.goto(`${base}/playground`, { waitUntil: 'load' });
  await page.waitForSelector('body[data-ready="true"]');
  await page.select('#example', example);
  await page.select('#operation', operation);
  await page.click('#run');
  await page.waitForFunction(() => document.body.dataset.state === 'done' && !document.getElementById('run').disabled);
  await page.waitForSelector('#picture svg');
  // the request's own timing differs run to run; the picture should not
  await page.$eval('#status', (e) => { e.textContent = ''; });
  await page.screenshot({ path: out });
  console.log(`wrote ${out} (${example}, ${operation})`);
} finally {
  await browser?.close();
  server.kill('SIGTERM');
}
