#!/usr/bin/env node
/** The peer for bench/http/run.mjs: a bare Fastify hello-world route, nothing else. */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
