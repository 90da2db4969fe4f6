/** Reading request bodies into blocks, with Fastify's limits and errors (src/server/body_stream.ts). */
import { PassThrough } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { BodyBytes, readBody } from '../../src/server/body_stream.js';

function read(chunks: (Buffer | string)[], headers: Record<string, string>, limit = 1 << 20, keep = true, fail?: Error): Promise<{ err: (Error & { code?: string; statusCode?: number }) | null; body?: BodyBytes }> {
  const payload = new PassThrough();
  const out = new Promise<{ err: Error | null; body?: BodyBytes }>((resolve) => {
    readBody({ headers } as unknown as FastifyRequest, payload, limit, keep, (err, body) => resolve({ err, body }));
  });
  for (const c of chunks) payload.write(c);
  if (fail !== undefined) payload.destroy(fail);
  else payload.end();
  return out;
}

const bytes = (n: number, seed = 1): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('readBody', () => {
  it('reads a body with a Content-Length into one block of that size', async () => {
    const parts = [bytes(10), bytes(70, 2), bytes(20, 3)];
    const { err, body } = await read(parts, { 'content-length': '100' });
    expect(err).toBeNull();
    expect(body!.blocks).toHaveLength(1);
    expect(body!.blocks[0]!.buffer.byteLength).toBe(100);
    expect(body!.buffer().equals(Buffer.concat(parts))).toBe(true);
  });

  it('reads a chunked body into growing blocks, each its own buffer', async () => {
    const parts = Array.from({ length: 200 }, (_, i) => bytes(1000 + i, i));
    const { err, body } = await read(parts, {});
    expect(err).toBeNull();
    expect(body!.blocks.length).toBeGreaterThan(1);
    expect(new Set(body!.blocks.map((b) => b.buffer)).size).toBe(body!.blocks.length);
    expect(body!.length).toBe(Buffer.concat(parts).length);
    expect(body!.buffer().equals(Buffer.concat(parts))).toBe(true);
    expect((await read(['{"a":', ' 1}'], {})).body!.buffer().toString()).toBe('{"a": 1}');
  });

  it('an empty body is zero blocks', async () => {
    const { err, body } = await read([], { 'content-length': '0' });
    expect(err).toBeNull();
    expect(body!.length).toBe(0);
    expect(body!.buffer().length).toBe(0);
  });

  it('gives Fastify\'s errors: over the limit (declared or received), length mismatch, a broken stream', async () => {
    expect((await read([bytes(10)], { 'content-length': '2000' }, 1000)).err?.code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
    expect((await read([bytes(600), bytes(600)], {}, 1000)).err?.code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
    expect((await read([bytes(10)], { 'content-length': '20' })).err?.code).toBe('FST_ERR_CTP_INVALID_CONTENT_LENGTH');
    const broken = await read([bytes(10)], {}, 1000, true, new Error('connection reset'));
    expect(broken.err?.message).toBe('connection reset');
    expect(broken.err?.statusCode).toBe(400);
  });

  it('reads and drops the body of a request that will not use it, limits included', async () => {
    const { err, body } = await read([bytes(500)], {}, 1000, false);
    expect(err).toBeNull();
    expect(body!.length).toBe(0);
    expect((await read([bytes(600), bytes(600)], {}, 1000, false)).err?.code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
  });
});
