/**
 * encodeBase64 / decodeBase64 (native/base64.cpp): the same text and bytes as Node's Buffer base64, and -1 for any
 * input the strict decoder does not take (which the server then hands to Buffer's decoder).
 */
import { describe, expect, test } from 'vitest';
import { kernels } from '../../src/kernels.js';
import { rng } from '../support/random.js';

const enc = (b: Uint8Array): string => {
  const dst = new Uint8Array(Math.ceil(b.length / 3) * 4);
  expect(kernels.encodeBase64!(b, dst)).toBe(dst.length);
  return Buffer.from(dst).toString('latin1');
};

const dec = (s: string): { n: number; bytes: Buffer } => {
  const dst = Buffer.alloc(Math.floor((s.length * 3) / 4) + 3);
  const n = kernels.decodeBase64!(Buffer.from(s, 'latin1'), dst);
  return { n, bytes: dst.subarray(0, Math.max(n, 0)) };
};

describe('base64', () => {
  test('round trips every length and every byte value as Buffer does', () => {
    const r = rng(7);
    for (let n = 0; n < 300; n++) {
      const b = Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
      const text = b.toString('base64');
      expect(enc(b)).toBe(text);
      const d = dec(text.replace(/=+$/, ''));
      expect(d.n).toBe(n);
      expect(d.bytes.equals(b)).toBe(true);
    }
    const all = Buffer.from(Array.from({ length: 256 * 3 }, (_, i) => i % 256));
    expect(enc(all)).toBe(all.toString('base64'));
    // Views into a larger buffer, of any typed array.
    const f = new Float64Array([1.5, -2, Math.PI, 0]).subarray(1, 3);
    expect(enc(new Uint8Array(f.buffer, f.byteOffset, f.byteLength))).toBe(Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64'));
  });

  test('ignores trailing bits as Buffer does', () => {
    for (const s of ['QR', 'QRz', 'QQ', 'QUI', 'QUJ']) expect(dec(s).bytes.equals(Buffer.from(s, 'base64'))).toBe(true);
  });

  test('refuses what is not strict base64', () => {
    for (const s of ['ab!d', 'ab=d', 'abcd=', 'a', 'abcde', 'ab d', 'ab-d', 'ab_d', 'ab\nd', 'abc\u00ff']) expect(dec(s).n, JSON.stringify(s)).toBe(-1);
    expect(() => kernels.decodeBase64!(Buffer.from('abcd'), new Uint8Array(2))).toThrow(/too short/);
    expect(() => kernels.encodeBase64!(new Uint8Array(4), new Uint8Array(7))).toThrow(/shorter/);
  });
});
