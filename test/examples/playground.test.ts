/**
 * The playground page in a real browser: headless Chromium (Debian's `chromium` package, driven by puppeteer-core)
 * loads /playground from a live server, runs the seed example, and the gradients it shows must be the API's answer.
 * Every request the page makes must go to the server itself (the page works offline). On failure a screenshot is
 * written under the system temp folder and its path printed. The page load time is printed, not asserted.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GradserveClient } from '../../src/client/index.js';
import { startServer, type LiveServer } from './live-server.js';

const CHROMIUM = process.env.GRADSERVE_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '../..');

let server: LiveServer;
let browser: Browser;
let page: Page;
/** Requests the page made to anywhere but the server. */
const outside: string[] = [];

/** Why the page cannot be tested here (no Chromium, no compiled client): every test fails with it, none is skipped. */
let setupError: Error | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    setupError = new Error(`the playground browser test needs headless Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run installs it), or set GRADSERVE_CHROMIUM to another Chromium executable`);
    return;
  }
  if (!existsSync(join(ROOT, 'dist/client/index.js'))) {
    setupError = new Error('the playground serves the compiled client (dist/client): run npm run build first');
    return;
  }
  server = await startServer();
  // A server that has drawn before: Graphviz is loaded when the page load is timed.
  const warm = await fetch(`${server.url}/v1/render`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ graph: { inputs: { a: { shape: [1] } }, nodes: [{ name: 'b', op: 'neg', inputs: ['a'] }] }, transform: 'vjp', of: ['b'], wrt: ['a'] }) });
  expect(warm.status).toBe(200);
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    if (r.url().startsWith(server.url) || r.url().startsWith('data:')) void r.continue();
    else {
      outside.push(r.url());
      void r.abort();
    }
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Runs a step; on failure saves a screenshot of the page and prints where. */
async function step<T>(name: string, f: () => Promise<T>): Promise<T> {
  if (setupError !== undefined) throw setupError;
  try {
    return await f();
  } catch (e) {
    if (page !== undefined) {
      const file = join(mkdtempSync(join(tmpdir(), 'gradserve-playground-')), `${name.replace(/\W+/g, '-')}.png`);
      await page.screenshot({ path: file, fullPage: true }).then(() => console.error(`playground test "${name}" failed; screenshot: ${file}`), () => undefined);
    }
    throw e;
  }
}

/** The numbers of a result table the page shows, as it shows them (data-value: the full value). */
async function tableValues(key: string): Promise<{ shape: number[]; values: number[] }> {
  const sel = `table[data-tensor="${key}"]`;
  await page.waitForSelector(sel, { timeout: 30_000 });
  const shape = await page.$eval(sel, (t) => (t.getAttribute('data-shape') ?? '').split(',').filter((s) => s !== '').map(Number));
  const values = await page.$$eval(`${sel} td`, (tds) => tds.map((td) => Number(td.getAttribute('data-value'))));
  return { shape, values };
}

async function runOperation(): Promise<void> {
  await page.click('#run');
  await page.waitForFunction(() => document.body.dataset.state === 'done' && !(document.getElementById('run') as HTMLButtonElement).disabled, { timeout: 60_000 });
}

describe('the playground page in headless Chromium', () => {
  it('loads offline: everything from the server, the seed example drawn', async () => {
    await step('load', async () => {
      const started = Date.now();
      await page.goto(`${server.url}/playground`, { waitUntil: 'load' });
      await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
      const ms = Date.now() - started;
      const nav = await page.evaluate(() => JSON.stringify(performance.getEntriesByType('navigation').map((e) => Math.round((e as PerformanceNavigationTiming).loadEventEnd))));
      console.log(`playground: page ready (seed example drawn) ${ms} ms after navigation started; load event at ${nav} ms`);
      expect(await page.$eval('#example', (s) => (s as HTMLSelectElement).value)).toBe('linear');
      // the seed's VJP graph is drawn: its gradient outputs are nodes of the SVG from /v1/render
      await page.waitForSelector('#picture svg [id="value:grad:w"]', { timeout: 30_000 });
      expect(outside).toEqual([]);
    });
  });

  it('runs the seed VJP and shows the gradients the API answers', async () => {
    await step('seed-vjp', async () => {
      expect(await page.$eval('#operation', (s) => (s as HTMLSelectElement).value)).toBe('vjp');
      await runOperation();
      const shownX = await tableValues('gradients.x');
      const shownW = await tableValues('gradients.w');
      const shownY = await tableValues('outputs.y');

      // The same request, straight to the API with the client, from the text the page sends.
      const graph = JSON.parse(await page.$eval('#graph', (t) => (t as HTMLTextAreaElement).value));
      const inputs = JSON.parse(await page.$eval('#inputs', (t) => (t as HTMLTextAreaElement).value));
      const fields = JSON.parse(await page.$eval('#fields', (t) => (t as HTMLTextAreaElement).value));
      const gs = new GradserveClient(server.url);
      const api = await gs.vjp({ graph, inputs, ...fields }).finally(() => gs.close());
      expect(shownX).toEqual({ shape: api.gradients.x!.shape, values: Array.from(api.gradients.x!.data, Number) });
      expect(shownW).toEqual({ shape: api.gradients.w!.shape, values: Array.from(api.gradients.w!.data, Number) });
      expect(shownY).toEqual({ shape: api.outputs.y!.shape, values: Array.from(api.outputs.y!.data, Number) });
      // and they are the worked example's numbers
      expect(shownX.values).toEqual([-2, -2]);
      expect(shownW.values).toEqual([1, 0, -1, 2, 0, -2]);
      expect(shownY.values).toEqual([9, 12, 15]);
      expect(await page.$eval('#error', (e) => (e as HTMLElement).hidden)).toBe(true);
    });
  });

  it('shows an error with the path it points at', async () => {
    await step('error-path', async () => {
      await page.$eval('#fields', (t) => {
        (t as HTMLTextAreaElement).value = JSON.stringify({ cotangents: { y: [[1, 0, -1]] }, wrt: ['nope'] });
      });
      await runOperation();
      await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
      const text = await page.$eval('#error', (e) => e.textContent ?? '');
      expect(text).toContain('UNKNOWN_VALUE');
      expect(await page.$$eval('#error code.path', (cs) => cs.map((c) => c.textContent))).toContain('wrt[0]');
      expect(await page.$eval('#fields', (t) => t.classList.contains('bad'))).toBe(true);
    });
  });

  it('draws a Jacobian as a heatmap and explains its shape', async () => {
    await step('jacobian-heatmap', async () => {
      await page.select('#example', 'mlp');
      await page.select('#operation', 'jacobian');
      await runOperation();
      const sel = 'canvas[data-tensor="jacobians.logits.w2"]';
      await page.waitForSelector(sel, { timeout: 30_000 });
      const size = await page.$eval(sel, (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
      // 8 rows (logits [4, 2]) by 10 columns (w2 [5, 2]), square cells
      expect(size[0]! / size[1]!).toBeCloseTo(10 / 8, 5);
      const explain = await page.$eval(`${sel} + .explain`, (e) => e.textContent ?? '');
      expect(explain).toContain('[4, 2] ++ [5, 2] = [4, 2, 5, 2]');
      expect(explain).toContain('8 × 10 matrix');
      expect(outside).toEqual([]);
    });
  });
});
