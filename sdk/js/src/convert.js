// Conversions between the values the world passes and plain JavaScript values.
//
// Integers: WIT `s64`/`u64` (ids, money, points, milliseconds) reach the plugin as JavaScript
// numbers. The QuickJS runtime passes numbers, and `integer()` checks that a number handed back
// is a safe integer: the runtime would truncate 7.5 to 7, and trap on a BigInt. Values that
// arrive as BigInt (other engines, tests) become numbers where they are safe.

import { invalid } from './errors.js';

/** `value` as a safe integer number: a number that is one, or a BigInt within ±(2^53 - 1). */
export function integer(name, value, { min = -Number.MAX_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = {}) {
  let n = value;
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalid(`${name}: ${value} is beyond the safe integers of JavaScript`);
    }
    n = Number(value);
  }
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw invalid(`${name}: expected an integer, got ${show(value)}`);
  if (n < min || n > max) throw invalid(`${name}: ${n} is out of range ${min}..=${max}`);
  return n;
}

/** `value` or null, as a safe integer (`undefined` and `null` are none). */
export function optionalInteger(name, value, range) {
  return value === undefined || value === null ? null : integer(name, value, range);
}

/** A `u32`. */
export function u32(name, value) {
  return integer(name, value, { min: 0, max: 0xffffffff });
}

/** `value`, which must be a string. */
export function string(name, value) {
  if (typeof value !== 'string') throw invalid(`${name}: expected a string, got ${show(value)}`);
  return value;
}

/** `value` or null, which must be a string when given. */
export function optionalString(name, value) {
  return value === undefined || value === null ? null : string(name, value);
}

/** A finite number (an `f64`). */
export function float(name, value) {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw invalid(`${name}: expected a finite number, got ${show(value)}`);
  return n;
}

function show(value) {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * A value from the host as plain JavaScript: BigInts that are safe integers become numbers
 * (larger ones stay BigInt), `undefined` (an absent option) becomes null, and byte lists are
 * Uint8Arrays. Records keep the runtime's camelCase field names.
 */
export function fromHost(value) {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map(fromHost);
  const out = {};
  for (const key of Object.keys(value)) out[key] = fromHost(value[key]);
  return out;
}

/** Bytes from a host `list<u8>`, which may arrive as an array of numbers. */
export function bytes(value) {
  if (value === undefined || value === null) return null;
  return value instanceof Uint8Array ? value : Uint8Array.from(value);
}
