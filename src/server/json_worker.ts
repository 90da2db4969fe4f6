/**
 * The JSON parse worker (src/server/parse_pool.ts): refuses what cannot be represented (json_prescan.ts), parses
 * with parseJsonText exactly as the event loop would, and sends the request back with its tensor payloads decoded
 * and transferred, and any other long string or array of numbers as bytes (json_tensors.ts).
 */
import { setPriority } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import { GradserveError } from '../errors.js';
import { depthErrorAt, parseJsonText } from './body.js';
import { prescanJson } from './json_prescan.js';
import { liftLarge, liftTensors } from './json_tensors.js';
import type { ParseReply, ParseRequest } from './parse_pool.js';

// On Linux a thread has its own nice value: when the cores are busy, the event loop (health checks, small requests)
// goes before a long parse. (Elsewhere this call would lower the whole process, so it is not made.)
if (process.platform === 'linux') {
  try {
    setPriority(10);
  } catch {
    // not permitted: parse at the normal priority
  }
}

function handle(job: ParseRequest): { reply: ParseReply; transfer: ArrayBuffer[] } {
  try {
    const b = job.blocks;
    const buf = b.length === 1 ? Buffer.from(b[0]!.buffer, b[0]!.byteOffset, b[0]!.byteLength) : Buffer.concat(b, job.length);
    // Blocks joined into one buffer are garbage from here on.
    job.blocks = [];
    b.length = 0;
    const heap = getHeapStatistics();
    prescanJson(buf, {
      maxTensorElements: job.maxTensorElements,
      maxOtherValues: job.maxOtherValues,
      heapBudget: job.heapShare * heap.heap_size_limit - heap.used_heap_size,
      tooDeep: depthErrorAt,
    });
    const value = parseJsonText(buf, false);
    const { lifted, transfer } = liftTensors(value);
    const rest = liftLarge(value);
    return { reply: { id: job.id, ok: true, value, lifted, large: rest.large }, transfer: [...transfer, ...rest.transfer] };
  } catch (e) {
    if (e instanceof GradserveError) {
      return { reply: { id: job.id, ok: false, error: { code: e.code, detail: e.message, errors: e.errors } }, transfer: [] };
    }
    return { reply: { id: job.id, ok: false, internal: e instanceof Error ? (e.stack ?? e.message) : String(e) }, transfer: [] };
  }
}

parentPort!.on('message', (job: ParseRequest) => {
  const { reply, transfer } = handle(job);
  parentPort!.postMessage(reply, transfer);
});
