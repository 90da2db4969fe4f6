import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, GradserveError, fmtBytes, fmtShape } from '../../src/errors.js';

describe('error catalogue', () => {
  it('maps codes to the statuses of API.md', () => {
    expect(ERROR_CATALOGUE.TOO_LARGE.status).toBe(413);
    expect(ERROR_CATALOGUE.OVERLOADED.status).toBe(503);
    expect(new GradserveError('SHAPE_MISMATCH', 'x').status).toBe(422);
  });
  it('writes sizes in binary units and shapes as [2, 3]', () => {
    expect(fmtBytes(64 * 4096 * 64 * 4096 * 4)).toBe('256 GiB');
    expect(fmtBytes(1536)).toBe('1.5 KiB');
    expect(fmtShape([2, 3])).toBe('[2, 3]');
  });
});
