#!/usr/bin/env node
/**
 * The transport's floor for bench/http/run.mjs: a bare node:http server that computes nothing. A POST's body is read
 * into a buffer of its Content-Length (one kept per size, as gradserve recycles its request buffers), and the answer is
 * `x-answer-bytes` bytes from a buffer kept per size (framed like a gradserve answer, so the lean client reads it the
 * same way). Any GET answers `{}` (the health prober's target). Timing gradserve's requests and this server's with
 * the same client and the same bytes tells the cost of gradserve's work from the cost of moving the bytes.
 *
 *   node bench/http/floor-server.mjs <port>
 */
import http from 'node:http';

const kept = new Map();
const buffer = (n) => {
  let b = kept.get(n);
  if (b === undefined) {
    if (kept.size >= 8) kept.clear();
    b = Buffer.alloc(n);
    kept.set(n, b);
  }
  return b;
};

http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
    res.end('{}');
    return;
  }
  const body = buffer(Number(req.headers['content-length'] ?? 0));
  let at = 0;
  req.on('data', (c) => {
    c.copy(body, at);
    at += c.length;
  });
  req.on('end', () => {
    const answer = buffer(Number(req.headers['x-answer-bytes'] ?? 0));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': answer.length, 'inference-header-content-length': '0' });
    res.end(answer);
  });
}).listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
