import { expect } from 'vitest';
import { GradserveError } from '../../src/errors.js';

/** Awaits a promise (or calls a function) that must fail with a GradserveError, and returns that error. */
export async function failure(p: Promise<unknown> | (() => unknown)): Promise<GradserveError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(GradserveError);
    return e as GradserveError;
  }
  throw new Error('expected a GradserveError');
}
