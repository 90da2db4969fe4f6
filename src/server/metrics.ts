/**
 * Prometheus metrics (GET /metrics). One registry per app so that several apps in one process (tests, embedding)
 * never share or double-register series.
 */
import type { FastifyInstance } from 'fastify';
import client from 'prom-client';
import type { ExecStats } from '../engine.types.js';
import type { BufferRecycler } from './recycle.js';

export interface Metrics {
  registry: client.Registry;
  requests: client.Counter<'method' | 'route' | 'status'>;
  duration: client.Histogram<'method' | 'route' | 'status'>;
  inFlight: client.Gauge;
  queueDepth: client.Gauge;
  memoryReserved: client.Gauge;
  nodes: client.Counter;
  flops: client.Counter;
  bytes: client.Counter;
  recordExec(stats: ExecStats): void;
  /** Exports the recycled-buffer figures (read at scrape time). */
  observeRecycler(r: BufferRecycler): void;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  // Default process metrics include nodejs_eventloop_lag_seconds (and its percentiles), heap and GC figures.
  client.collectDefaultMetrics({ register: registry });
  const requests = new client.Counter({
    name: 'gradserve_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'gradserve_http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const inFlight = new client.Gauge({ name: 'gradserve_http_in_flight_requests', help: 'Requests being handled', registers: [registry] });
  const queueDepth = new client.Gauge({ name: 'gradserve_admission_queue_depth', help: 'Requests waiting for server memory', registers: [registry] });
  const memoryReserved = new client.Gauge({ name: 'gradserve_memory_reserved_bytes', help: 'Bytes of the server-wide memory budget held by running requests', registers: [registry] });
  const nodes = new client.Counter({ name: 'gradserve_executed_nodes_total', help: 'Graph nodes executed', registers: [registry] });
  const flops = new client.Counter({ name: 'gradserve_executed_flops_total', help: 'Floating-point operations executed (estimate)', registers: [registry] });
  const bytes = new client.Counter({ name: 'gradserve_executed_bytes_total', help: 'Bytes of tensors produced by executed nodes', registers: [registry] });
  return {
    registry, requests, duration, inFlight, queueDepth, memoryReserved, nodes, flops, bytes,
    recordExec(s: ExecStats): void {
      if (Number.isFinite(s.nodes)) nodes.inc(s.nodes);
      if (Number.isFinite(s.flops)) flops.inc(s.flops);
      if (Number.isFinite(s.bytes)) bytes.inc(s.bytes);
    },
    observeRecycler(r: BufferRecycler): void {
      new client.Gauge({
        name: 'gradserve_recycled_buffer_bytes', help: 'Free request/result buffers kept for reuse (capped by --pool-bytes)', registers: [registry],
        collect() { this.set(r.stats().cachedBytes); },
      });
      new client.Counter({
        name: 'gradserve_recycled_buffer_takes_total', help: 'Large request/result buffers handed out, by whether a recycled one served', labelNames: ['reused'] as const, registers: [registry],
        collect() {
          const s = r.stats();
          this.reset();
          this.inc({ reused: 'true' }, s.hits);
          this.inc({ reused: 'false' }, s.misses);
        },
      });
    },
  };
}

const START = Symbol('gradserve.start');

export function installMetrics(app: FastifyInstance, m: Metrics): void {
  // Callback-style hooks: an async hook costs a promise and a microtask turn on every request.
  app.addHook('onRequest', (req, _reply, done) => {
    (req as unknown as Record<symbol, bigint>)[START] = process.hrtime.bigint();
    m.inFlight.inc();
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    m.inFlight.dec();
    const start = (req as unknown as Record<symbol, bigint | undefined>)[START];
    const labels = { method: req.method, route: req.routeOptions?.url ?? 'unmatched', status: String(reply.statusCode) };
    m.requests.inc(labels);
    if (start !== undefined) m.duration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    done();
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const text = await m.registry.metrics();
    return reply.type(m.registry.contentType).send(text);
  });
}
