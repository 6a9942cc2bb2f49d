// Hashes and signatures the QuickJS runtime lacks (it has no `crypto`, no `node:crypto`), for
// connectors that sign their requests or check a provider's signature:
//
//   import { base64Encode, hmacSha256 } from '@kith/plugin-sdk/crypto';
//   const sign = base64Encode(hmacSha256(secret, `${timestamp}\n${secret}`));
//
// SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104) and base64 (RFC 4648, with padding), in plain
// JavaScript. Data is bytes (a Uint8Array, or an array of numbers) or a string, taken as UTF-8.

import { utf8Encode } from './text.js';

// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// The first 32 bits of the fractional parts of the square roots of the first 8 primes.
const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** `data` as bytes: a Uint8Array as it is, an array of numbers copied, a string as UTF-8. */
function toBytes(data, name) {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return utf8Encode(data);
  if (Array.isArray(data)) return Uint8Array.from(data);
  throw new TypeError(`${name}: expected a string or bytes (a Uint8Array)`);
}

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

/** One 64-byte block of `m` at `at` into the state `h`; `w` is the message schedule. */
function compress(h, m, at, w) {
  for (let i = 0; i < 16; i++, at += 4) w[i] = (m[at] << 24) | (m[at + 1] << 16) | (m[at + 2] << 8) | m[at + 3];
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
    const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let [a, b, c, d, e, f, g, k] = h;
  for (let i = 0; i < 64; i++) {
    const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += k;
}

/** The SHA-256 digest (32 bytes) of bytes or a string (UTF-8). */
export function sha256(data) {
  const message = toBytes(data, 'data');
  const n = message.length;
  // The message, a 1 bit, zeros, and its length in bits as 64 bits big-endian, in 64-byte blocks.
  const padded = new Uint8Array(Math.ceil((n + 9) / 64) * 64);
  padded.set(message);
  padded[n] = 0x80;
  const bits = n * 8;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bits / 0x100000000));
  view.setUint32(padded.length - 4, bits >>> 0);
  const h = Int32Array.from(H0);
  const w = new Int32Array(64);
  for (let at = 0; at < padded.length; at += 64) compress(h, padded, at, w);
  const digest = new Uint8Array(32);
  const out = new DataView(digest.buffer);
  for (let i = 0; i < 8; i++) out.setInt32(4 * i, h[i]);
  return digest;
}

/** The HMAC-SHA256 (32 bytes) of `data` under `key`, each bytes or a string (UTF-8). */
export function hmacSha256(key, data) {
  let k = toBytes(key, 'key');
  const message = toBytes(data, 'data');
  if (k.length > 64) k = sha256(k);
  const inner = new Uint8Array(64 + message.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    const byte = i < k.length ? k[i] : 0;
    inner[i] = byte ^ 0x36;
    outer[i] = byte ^ 0x5c;
  }
  inner.set(message, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Bytes, or a string as UTF-8, in base64 with `=` padding (RFC 4648 §4). */
export function base64Encode(data) {
  const b = toBytes(data, 'data');
  let out = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    out += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63];
    out += i + 1 < b.length ? ALPHABET[(n >>> 6) & 63] : '=';
    out += i + 2 < b.length ? ALPHABET[n & 63] : '=';
  }
  return out;
}

/** Bytes, or a string as UTF-8, in lower-case hexadecimal. */
export function hexEncode(data) {
  let out = '';
  for (const byte of toBytes(data, 'data')) out += (byte < 16 ? '0' : '') + byte.toString(16);
  return out;
}
