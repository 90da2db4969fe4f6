/**
 * CORS, response compression, compressed request bodies (with zip bombs), the request log and OpenTelemetry spans.
 */
import { Writable } from 'node:stream';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { describe, expect, it } from 'vitest';
import type { GradserveApp } from '../../src/server/app.js';
import { tracingRequested } from '../../src/server/telemetry.js';
import { linearGraph, makeApp } from './helpers.js';

const linear = { graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } };
/** An answer over the 1 KiB compression threshold. */
const bigAnswer = {
  graph: { inputs: { s: { shape: [], datatype: 'FP32' } }, nodes: [{ name: 'y', op: 'broadcast_to', inputs: ['s'], attrs: { shape: [1000] } }] },
  inputs: { s: 0.125 },
};

async function withApp<T>(opts: Parameters<typeof makeApp>[0], f: (app: GradserveApp) => Promise<T>): Promise<T> {
  const app = await makeApp(opts);
  try {
    return await f(app);
  } finally {
    await app.close();
  }
}

describe('CORS', () => {
  const preflight = (app: GradserveApp, origin: string) => app.inject({
    method: 'OPTIONS', url: '/v1/evaluate',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization,inference-header-content-length' },
  });

  it('is off by default: no CORS headers, preflights are not answered', async () => {
    await withApp({}, async (app) => {
      expect((await preflight(app, 'https://app.example')).headers['access-control-allow-origin']).toBeUndefined();
      const r = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { origin: 'https://app.example' }, payload: linear });
      expect(r.statusCode).toBe(200);
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  it('allows the configured origins only, preflights without an API key, and exposes the framing headers', async () => {
    await withApp({ corsOrigins: ['https://app.example'], apiKeys: ['k'] }, async (app) => {
      const p = await preflight(app, 'https://app.example');
      expect(p.statusCode).toBe(204);
      expect(p.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(String(p.headers['access-control-allow-headers'])).toContain('inference-header-content-length');
      expect(String(p.headers['access-control-allow-methods'])).toContain('POST');
      const r = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { origin: 'https://app.example', authorization: 'Bearer k' }, payload: linear });
      expect(r.statusCode).toBe(200);
      expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(String(r.headers['access-control-expose-headers'])).toMatch(/inference-header-content-length.*x-request-id.*retry-after/);
      // API keys still hold for the request itself
      expect((await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { origin: 'https://app.example' }, payload: linear })).statusCode).toBe(401);
      const other = await preflight(app, 'https://evil.example');
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  it('`*` allows any origin', async () => {
    await withApp({ corsOrigins: ['*'] }, async (app) => {
      expect((await preflight(app, 'https://any.example')).headers['access-control-allow-origin']).toBe('*');
    });
  });
});

describe('response compression', () => {
  it('gzip or deflate when Accept-Encoding asks; plain otherwise; never for binary frames', async () => {
    await withApp({}, async (app) => {
      const plain = await app.inject({ method: 'POST', url: '/v1/evaluate', payload: bigAnswer });
      expect(plain.headers['content-encoding']).toBeUndefined();
      const gz = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { 'accept-encoding': 'gzip' }, payload: bigAnswer });
      expect(gz.statusCode).toBe(200);
      expect(gz.headers['content-encoding']).toBe('gzip');
      expect(String(gz.headers.vary)).toMatch(/accept-encoding/i);
      expect(JSON.parse(gunzipSync(gz.rawPayload).toString())).toEqual(plain.json());
      expect(gz.rawPayload.length).toBeLessThan(plain.rawPayload.length / 10);
      const df = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { 'accept-encoding': 'deflate' }, payload: bigAnswer });
      expect(df.headers['content-encoding']).toBe('deflate');
      // small answers stay plain
      expect((await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { 'accept-encoding': 'gzip' }, payload: linear })).headers['content-encoding']).toBeUndefined();
      const framed = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { 'accept-encoding': 'gzip' }, payload: { ...bigAnswer, encoding: 'binary' } });
      expect(framed.headers['content-encoding']).toBeUndefined();
      expect(framed.headers['content-type']).toBe('application/octet-stream');
      expect(Number(framed.headers['content-length'])).toBe(framed.rawPayload.length);
      // errors are JSON too
      const problem = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { 'accept-encoding': 'gzip' }, payload: { graph: 1 } });
      expect(problem.statusCode).toBe(400);
    });
  });

  it('--compression off: never', async () => {
    await withApp({ compression: false }, async (app) => {
      const r = await app.inject({ method: 'POST', url: '/v1/evaluate', headers: { 'accept-encoding': 'gzip' }, payload: bigAnswer });
      expect(r.headers['content-encoding']).toBeUndefined();
    });
  });
});

describe('compressed request bodies', () => {
  const post = (app: GradserveApp, body: Buffer, encoding: string, extra: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/evaluate', payload: body, headers: { 'content-type': 'application/json', 'content-encoding': encoding, ...extra } });

  it('gzip and deflate bodies are read like plain ones, binary frames included', async () => {
    await withApp({}, async (app) => {
      const text = Buffer.from(JSON.stringify(linear));
      const plain = (await app.inject({ method: 'POST', url: '/v1/evaluate', payload: linear })).json();
      expect((await post(app, gzipSync(text), 'gzip')).json()).toEqual(plain);
      expect((await post(app, deflateSync(text), 'deflate')).json()).toEqual(plain);
      expect((await post(app, text, 'identity')).json()).toEqual(plain);
      const header = Buffer.from(JSON.stringify({ graph: linearGraph, inputs: { x: { shape: [1, 2], datatype: 'FP32', binary_data_size: 8 }, w: [[1, 2, 3], [4, 5, 6]] } }));
      const framed = Buffer.concat([header, Buffer.from(new Float32Array([1, 2]).buffer)]);
      const r = await post(app, gzipSync(framed), 'gzip', { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json()).toEqual(plain);
    });
  });

  it('the body limit counts decompressed bytes: a zip bomb is 413 TOO_LARGE', async () => {
    await withApp({ bodyLimitBytes: 1024 ** 2 }, async (app) => {
      // 64 MiB of spaces inside a JSON object, about 64 KiB compressed
      const bomb = gzipSync(Buffer.concat([Buffer.from('{"graph": '), Buffer.alloc(64 * 1024 ** 2, 0x20), Buffer.from('1}')]));
      expect(bomb.length).toBeLessThan(1024 ** 2);
      const r = await post(app, bomb, 'gzip');
      expect(r.statusCode).toBe(413);
      expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(r.json().code).toBe('TOO_LARGE');
      expect(r.json().detail).toMatch(/decompressed/);
      // the server carries on
      expect((await app.inject({ method: 'POST', url: '/v1/evaluate', payload: linear })).statusCode).toBe(200);
    });
  });

  it('broken gzip is INVALID_JSON, an unknown encoding INVALID_REQUEST', async () => {
    await withApp({}, async (app) => {
      const gz = gzipSync(Buffer.from(JSON.stringify(linear)));
      const cut = await post(app, gz.subarray(0, gz.length - 10), 'gzip');
      expect(cut.statusCode).toBe(400);
      expect(cut.json().code).toBe('INVALID_JSON');
      const junk = await post(app, Buffer.from('not gzip at all'), 'gzip');
      expect(junk.statusCode).toBe(400);
      expect(junk.json().code).toBe('INVALID_JSON');
      const br = await post(app, Buffer.from('{}'), 'br');
      expect(br.statusCode).toBe(400);
      expect(br.json().code).toBe('INVALID_REQUEST');
    });
  });
});

describe('request log', () => {
  it('one line per request with route, status, bytes in and out and engine time; health probes not logged', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    await withApp({ logger: { level: 'info', stream } }, async (app) => {
      const payload = JSON.stringify(linear);
      await app.inject({ method: 'POST', url: '/v1/evaluate', payload, headers: { 'content-type': 'application/json' } });
      await app.inject({ method: 'GET', url: '/v2/health/ready' });
      await app.inject({ method: 'GET', url: '/v2/health/live' });
      await app.inject({ method: 'POST', url: '/v1/evaluate', payload: { graph: 1 } });
      const done = lines.filter((l) => l.msg === 'request completed');
      expect(done).toHaveLength(2);
      expect(done[0]).toMatchObject({ method: 'POST', route: '/v1/evaluate', url: '/v1/evaluate', status: 200, bytesIn: payload.length });
      expect(done[0]!.bytesOut).toBeGreaterThan(50);
      expect(done[0]!.engineMs).toBeGreaterThan(0);
      expect(typeof done[0]!.reqId).toBe('string');
      expect(done[1]).toMatchObject({ status: 400, engineMs: 0 });
      expect(lines.some((l) => String(l.url ?? '').includes('health') || l.msg === 'incoming request')).toBe(false);
    });
  });
});

describe('OpenTelemetry', () => {
  it('off unless the OTEL_* variables ask for traces', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' })).toBe(false);
  });

  it('a server span per request, continuing the caller trace, with parse, plan, run and encode phases', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    // as the CLI does: the global W3C propagator reads `traceparent`
    provider.register();
    const tracer = provider.getTracer('test');
    await withApp({ tracer }, async (app) => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const r = await app.inject({
        method: 'POST', url: '/v1/grad',
        headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
        payload: { ...linear, graph: { ...linearGraph, nodes: [...linearGraph.nodes, { name: 's', op: 'sum', inputs: ['y'] }] }, of: 's', wrt: ['w'] },
      });
      expect(r.statusCode).toBe(200);
      await app.inject({ method: 'GET', url: '/v2/health/ready' });
      const spans = exporter.getFinishedSpans();
      const server = spans.find((s) => s.name === 'POST /v1/grad')!;
      expect(server).toBeDefined();
      expect(server.spanContext().traceId).toBe(traceId);
      expect(server.attributes['http.route']).toBe('/v1/grad');
      expect(server.attributes['http.response.status_code']).toBe(200);
      expect(server.attributes['gradserve.engine_ms']).toBeGreaterThan(0);
      const phases = spans.filter((s) => s.parentSpanContext?.spanId === server.spanContext().spanId).map((s) => s.name);
      expect(phases).toEqual(['gradserve.parse', 'gradserve.plan', 'gradserve.run', 'gradserve.encode']);
      expect(spans.filter((s) => s.name.includes('health'))).toEqual([]);
    });
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });
});
