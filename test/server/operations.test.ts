/** Operations surface: metrics, OpenAPI, docs, request ids, configuration. */
import { describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { buildMetricsApp, type GradserveApp } from '../../src/server/app.js';
import { loadConfig, parseBytes, SETTINGS } from '../../src/server/config.js';
import { linearGraph, makeApp } from './helpers.js';

describe('GET /metrics', () => {
  it('counts requests per route and status, executed work, in-flight requests, queue depth and event-loop lag', async () => {
    const app = await makeApp();
    try {
      const ok = await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } } });
      expect(ok.statusCode).toBe(200);
      await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: linearGraph, inputs: {} } });
      const r = await app.inject({ method: 'GET', url: '/metrics' });
      expect(r.statusCode).toBe(200);
      expect(String(r.headers['content-type'])).toMatch(/text\/plain/);
      const t = r.body;
      expect(t).toMatch(/gradserve_http_requests_total\{method="POST",route="\/v1\/evaluate",status="200"\} 1/);
      expect(t).toMatch(/gradserve_http_requests_total\{method="POST",route="\/v1\/evaluate",status="422"\} 1/);
      expect(t).toMatch(/gradserve_http_request_duration_seconds_count\{method="POST",route="\/v1\/evaluate",status="200"\} 1/);
      const nodes = /gradserve_executed_nodes_total (\d+)/.exec(t);
      expect(Number(nodes?.[1])).toBeGreaterThanOrEqual(1);
      expect(Number(/gradserve_executed_flops_total (\d+)/.exec(t)?.[1])).toBeGreaterThan(0);
      expect(t).toMatch(/gradserve_executed_bytes_total \d+/);
      expect(t).toMatch(/gradserve_http_in_flight_requests \d/);
      expect(t).toMatch(/gradserve_admission_queue_depth 0/);
      expect(t).toMatch(/nodejs_eventloop_lag_seconds/);
    } finally {
      await app.close();
    }
  });
});

describe('OpenAPI and docs', () => {
  it('serves a valid OpenAPI 3.1 document covering every endpoint', async () => {
    const app = await makeApp();
    try {
      const r = await app.inject({ method: 'GET', url: '/openapi.json' });
      expect(r.statusCode).toBe(200);
      const doc = r.json();
      expect(doc.openapi).toMatch(/^3\.1/);
      for (const p of ['/v1/evaluate', '/v1/grad', '/v1/vjp', '/v1/jvp', '/v1/jacobian', '/v1/hvp', '/v1/hessian', '/v1/gradcheck', '/v1/transform', '/v1/shapes']) {
        expect(doc.paths[p]?.post, p).toBeDefined();
      }
      expect(doc.paths['/v1/ops'].get).toBeDefined();
      expect(doc.paths['/v2/models/{name}/infer'].post).toBeDefined();
      const body = doc.paths['/v1/grad'].post.requestBody.content['application/json'].schema;
      // `graph` or `model` (exactly one, checked by the server), then the endpoint's own fields
      expect(body.required).toEqual(expect.arrayContaining(['of', 'wrt']));
      expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(['graph', 'model', 'inputs']));
      const res = await new Validator().validate(doc);
      expect(res.errors ?? []).toEqual([]);
      expect(res.valid).toBe(true);
      const docs = await app.inject({ method: 'GET', url: '/docs' });
      expect([200, 302]).toContain(docs.statusCode);
      const page = await app.inject({ method: 'GET', url: docs.statusCode === 302 ? `/docs/${String(docs.headers.location).replace(/^.*\//, '')}` : '/docs' });
      expect(page.body).toMatch(/swagger/i);
    } finally {
      await app.close();
    }
  });
});

describe('request ids', () => {
  it('echoes a caller-supplied X-Request-Id and generates one otherwise', async () => {
    const app = await makeApp();
    try {
      const a = await app.inject({ method: 'GET', url: '/v2/health/live', headers: { 'x-request-id': 'abc-123' } });
      expect(a.headers['x-request-id']).toBe('abc-123');
      const b = await app.inject({ method: 'GET', url: '/v2/health/live' });
      expect(String(b.headers['x-request-id'])).toMatch(/^req-/);
    } finally {
      await app.close();
    }
  });
});

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({}, []);
    expect(c.host).toBe('0.0.0.0');
    expect(c.port).toBe(8080);
    expect(c.bodyLimitBytes).toBe(256 * 1024 * 1024);
    expect(c.apiKeys).toEqual([]);
    expect(c.modelRepository).toBeUndefined();
  });

  it('reads environment variables, then flags on top', () => {
    const c = loadConfig(
      { PORT: '9000', GRADSERVE_API_KEYS: 'a, b,,c', GRADSERVE_BODY_LIMIT: '1MiB', GRADSERVE_MODEL_REPOSITORY: '/models', GRADSERVE_MAX_NODES: '7' },
      ['--port', '9100', '--request-timeout-ms=250', '--pretty', '--server-memory', '2GiB'],
    );
    expect(c.port).toBe(9100);
    expect(c.apiKeys).toEqual(['a', 'b', 'c']);
    expect(c.bodyLimitBytes).toBe(1024 * 1024);
    expect(c.modelRepository).toBe('/models');
    expect(c.maxNodes).toBe(7);
    expect(c.requestTimeoutMs).toBe(250);
    expect(c.prettyLogs).toBe(true);
    expect(c.serverMemoryBytes).toBe(2 * 1024 ** 3);
    expect(loadConfig({ GRADSERVE_PORT: '1', PORT: '2' }).port).toBe(1);
  });

  it('rejects unknown flags and malformed values', () => {
    expect(() => loadConfig({}, ['--bogus'])).toThrow(/unknown option --bogus/);
    expect(() => loadConfig({ GRADSERVE_PORT: 'eighty' })).toThrow(/GRADSERVE_PORT/);
    expect(() => loadConfig({}, ['--body-limit', 'lots'])).toThrow(/byte size/);
    expect(() => loadConfig({}, ['--port'])).toThrow(/needs a value/);
    expect(parseBytes('1.5 GB')).toBe(1.5e9);
  });

  it('documents every setting in the README table that docs/configuration.md points to', async () => {
    const { readFileSync } = await import('node:fs');
    const notes = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(notes).toContain('README.md#configuration');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const doc = readme.slice(readme.indexOf('## Configuration'));
    for (const s of SETTINGS) {
      expect(doc, s.env[0]).toContain(s.env[0]!);
      expect(doc, s.flag).toContain(s.flag);
    }
  });
});

describe('API keys and the operations endpoints', () => {
  const get = (app: GradserveApp, url: string) => app.inject({ method: 'GET', url });

  it('with keys set, /metrics, /openapi.json and /docs need one unless opened', async () => {
    const closed = await makeApp({ apiKeys: ['k'] });
    try {
      for (const url of ['/metrics', '/openapi.json', '/docs']) expect((await get(closed, url)).statusCode, url).toBe(401);
    } finally {
      await closed.close();
    }
    const open = await makeApp({ apiKeys: ['k'], publicMetrics: true, publicDocs: true });
    try {
      expect((await get(open, '/metrics')).statusCode).toBe(200);
      expect((await get(open, '/openapi.json')).statusCode).toBe(200);
      expect([200, 302]).toContain((await get(open, '/docs')).statusCode);
      // only those: the API itself still needs the key
      expect((await get(open, '/v1/ops')).statusCode).toBe(401);
      expect((await get(open, '/metrics-other')).statusCode).toBe(401);
    } finally {
      await open.close();
    }
    const metricsOnly = await makeApp({ apiKeys: ['k'], publicMetrics: true });
    try {
      expect((await get(metricsOnly, '/metrics')).statusCode).toBe(200);
      expect((await get(metricsOnly, '/openapi.json')).statusCode).toBe(401);
    } finally {
      await metricsOnly.close();
    }
  });

  it('--metrics-port: a second listener serving /metrics alone, without keys, counting the main app', async () => {
    const app = await makeApp({ apiKeys: ['k'] });
    const metrics = await buildMetricsApp(app);
    try {
      await app.inject({ method: 'GET', url: '/v1/ops', headers: { authorization: 'Bearer k' } });
      const r = await metrics.inject({ method: 'GET', url: '/metrics' });
      expect(r.statusCode).toBe(200);
      expect(r.body).toMatch(/gradserve_http_requests_total\{method="GET",route="\/v1\/ops",status="200"\} 1/);
      expect((await metrics.inject({ method: 'GET', url: '/v1/ops' })).statusCode).toBe(404);
      expect(loadConfig({ GRADSERVE_METRICS_PORT: '9464', GRADSERVE_PUBLIC_METRICS: '1' }, ['--public-docs'])).toMatchObject({ metricsPort: 9464, publicMetrics: true, publicDocs: true });
    } finally {
      await metrics.close();
      await app.close();
    }
  });
});
