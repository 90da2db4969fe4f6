/**
 * The end of a shutdown that ran out of time: every request still in flight gets an answer, 503 OVERLOADED with
 * Retry-After (the client retries, and another replica takes it), instead of a connection reset when the process
 * exits. A request whose engine run is under way has that run cancelled with the 503 as its reason (the run's own
 * error path answers it); any other request not yet answered is answered directly.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GradserveError } from '../errors.js';
import { sendError } from './problem.js';

interface InFlight {
  reply: FastifyReply;
  /** Set while the request's engine run is under way (src/server/run.ts). */
  cancel?: (reason: GradserveError) => void;
}

/** The requests in flight per app (routes see their plugin's instance as `req.server`, so requests are the key). */
const apps = new WeakMap<FastifyInstance, Set<FastifyRequest>>();
const inFlight = new WeakMap<FastifyRequest, InFlight>();

export function installDrain(app: FastifyInstance): void {
  const live = new Set<FastifyRequest>();
  apps.set(app, live);
  app.addHook('onRequest', (req, reply, done) => {
    live.add(req);
    inFlight.set(req, { reply });
    const forget = (): void => {
      live.delete(req);
    };
    reply.raw.once('finish', forget);
    reply.raw.once('close', forget);
    done();
  });
}

/** While `cancel` is set, a shutdown cancels the request's run through it; the returned function unsets it. */
export function onShutdownCancel(req: FastifyRequest, cancel: (reason: GradserveError) => void): () => void {
  const e = inFlight.get(req);
  if (e === undefined) return () => {};
  e.cancel = cancel;
  return () => {
    if (e.cancel === cancel) delete e.cancel;
  };
}

export function shuttingDownError(retryAfterSeconds: number): GradserveError {
  return new GradserveError('OVERLOADED', 'the server is shutting down and did not finish this request in time; retry it', {
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

/**
 * Answers every request in flight with 503 OVERLOADED and Retry-After, and resolves once those answers are written
 * (or after `waitMs`, whichever is first). Requests whose answer has started are left to finish.
 */
export async function answerInFlight(app: FastifyInstance, retryAfterSeconds = 1, waitMs = 2000): Promise<number> {
  const pending: Promise<void>[] = [];
  for (const req of apps.get(app) ?? []) {
    const e = inFlight.get(req);
    if (e === undefined) continue;
    const raw = e.reply.raw;
    if (raw.headersSent || raw.writableEnded) continue;
    pending.push(new Promise<void>((resolve) => {
      raw.once('finish', () => resolve());
      raw.once('close', () => resolve());
    }));
    const err = shuttingDownError(retryAfterSeconds);
    if (e.cancel !== undefined) e.cancel(err);
    else if (!e.reply.sent) sendError(req, e.reply, err);
  }
  if (pending.length === 0) return 0;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(pending),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
  return pending.length;
}
