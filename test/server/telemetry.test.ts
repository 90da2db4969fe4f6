/**
 * The OpenTelemetry SDK as `gradserve serve` sets it up from the standard variables: OTEL_TRACES_EXPORTER=console
 * prints the spans of a request (the server span and its phases) and the resource from OTEL_SERVICE_NAME; an
 * unsupported OTLP protocol stops the start with a message.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChildServer, startServer } from './child_server.js';
import { linearGraph } from './helpers.js';

let server: ChildServer | undefined;
afterEach(() => {
  if (server !== undefined && server.child.exitCode === null) server.child.kill('SIGKILL');
  server = undefined;
});

describe('OpenTelemetry SDK from OTEL_* variables', () => {
  it('OTEL_TRACES_EXPORTER=console: spans of a request, with its phases, flushed at shutdown', async () => {
    server = await startServer([], { OTEL_TRACES_EXPORTER: 'console', OTEL_SERVICE_NAME: 'gradserve-test' });
    expect(server.log()).toContain('OpenTelemetry tracing on');
    const r = await fetch(`${server.base}/v1/evaluate`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ graph: linearGraph, inputs: { x: [[1, 2]], w: [[1, 2, 3], [4, 5, 6]] } }),
    });
    expect(r.status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const out = server.log();
    for (const name of ['POST /v1/evaluate', 'gradserve.parse', 'gradserve.plan', 'gradserve.run', 'gradserve.encode']) expect(out).toContain(`name: '${name}'`);
    expect(out).toContain("'service.name': 'gradserve-test'");
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT alone: spans go to the collector over OTLP http/protobuf', async () => {
    const received: { url: string; type: string; bytes: number }[] = [];
    const collector = createServer((req, res) => {
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('end', () => {
        received.push({ url: req.url ?? '', type: String(req.headers['content-type']), bytes });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    try {
      const port = (collector.address() as AddressInfo).port;
      server = await startServer([], { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_TRACES_EXPORTER: '' });
      const r = await fetch(`${server.base}/v1/ops`);
      expect(r.status).toBe(200);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(received.length, server.log()).toBeGreaterThan(0);
      expect(received[0]).toMatchObject({ url: '/v1/traces', type: 'application/x-protobuf' });
      expect(received[0]!.bytes).toBeGreaterThan(50);
    } finally {
      collector.close();
    }
  });

  it('an OTLP protocol other than http/protobuf stops the start with a message', async () => {
    await expect(startServer([], { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).rejects.toThrow(/http\/protobuf/);
  });
});
