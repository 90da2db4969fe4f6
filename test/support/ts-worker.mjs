// Entry of worker threads started from the TypeScript sources (under vitest, src/server/parse_pool.ts has no compiled
// json_worker.js beside it): registers a loader that compiles .ts on the fly, then imports the worker's module.
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register(new URL('./ts-loader.mjs', import.meta.url));
await import(workerData.entry);
