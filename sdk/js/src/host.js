// The host functions of `kith:plugin@0.2.0`, each behind a capability the manifest requests and
// the shop grants; without it they throw `KithError` `access-denied`.
//
// They work only while the kernel calls an export. A module's top-level code runs when the
// component is built (the QuickJS heap is snapshotted then), where they are not there: call them
// from inside `evaluate`, `score` and the other exports.

import * as clockApi from 'kith:plugin/clock@0.2.0';
import * as configApi from 'kith:plugin/config@0.2.0';
import * as customersApi from 'kith:plugin/customers@0.2.0';
import * as kvApi from 'kith:plugin/kv@0.2.0';
import * as logApi from 'kith:plugin/log@0.2.0';
import * as shopApi from 'kith:plugin/shop@0.2.0';
import * as summariesApi from 'kith:plugin/summaries@0.2.0';
import { fromWit, invalid } from './errors.js';
import { bytes, fromHost, integer, string, u32 } from './convert.js';
import { utf8Decode, utf8Encode } from './text.js';

function call(f) {
  try {
    return f();
  } catch (e) {
    throw fromWit(e);
  }
}

/** The log levels, lowest first. */
export const LOG_LEVELS = Object.freeze(['trace', 'debug', 'info', 'warn', 'error']);

/**
 * Log lines, kept per shop and plugin (capability `log`). Logging never fails the plugin:
 * without the capability, or past the host's caps, the line is dropped.
 */
export const log = Object.freeze({
  write(level, message) {
    if (!LOG_LEVELS.includes(level)) throw invalid(`log level: expected one of ${LOG_LEVELS.join(', ')}`);
    try {
      logApi.write(level, String(message));
    } catch {
      // A plugin that may not log has nowhere to report that; dropping the line is the contract.
    }
  },
  trace: (message) => log.write('trace', message),
  debug: (message) => log.write('debug', message),
  info: (message) => log.write('info', message),
  warn: (message) => log.write('warn', message),
  error: (message) => log.write('error', message),
});

/**
 * The shop's configuration of this plugin, parsed (capability `config`): a JSON value valid
 * against the manifest's `config-schema`. With `defaults`, an object's missing keys are taken
 * from them: `config({ min_spent: 100000 }).min_spent`.
 */
export function config(defaults) {
  const text = config.raw();
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw invalid(`configuration: ${e.message}`);
  }
  if (defaults === undefined) return value;
  if (value === null) return { ...defaults };
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('configuration: expected a JSON object');
  return { ...defaults, ...value };
}

/** The configuration as JSON text. */
config.raw = () => call(() => configApi.get());

/**
 * The key-value space of this shop and plugin (capability `kv`). Writes take effect with the
 * call's decisions: if the call fails, its writes are discarded.
 */
export const kv = Object.freeze({
  /** The bytes stored under `key`, or null. */
  get: (key) => bytes(call(() => kvApi.get(string('key', key)))),
  /** Store bytes (a Uint8Array, or a string as UTF-8); `quota-exceeded` past the kernel's limits. */
  set(key, value) {
    const data = typeof value === 'string' ? utf8Encode(value) : bytes(value);
    if (data === null) throw invalid('kv value: expected bytes or a string');
    call(() => kvApi.set(string('key', key), data));
  },
  /** Remove a key; removing a missing key succeeds. */
  delete: (key) => call(() => kvApi.delete(string('key', key))),
  /** The text stored under `key` (UTF-8), or null. */
  getText(key) {
    const data = kv.get(key);
    return data === null ? null : utf8Decode(data);
  },
  /** The JSON value stored under `key`, or null when the key is not set. */
  getJson(key) {
    const text = kv.getText(key);
    if (text === null) return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw invalid(`value of \`${key}\`: ${e.message}`);
    }
  },
  /** Store a value as JSON. */
  setJson(key, value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw invalid(`value of \`${key}\`: not representable as JSON`);
    kv.set(key, text);
  },
});

/**
 * The kernel's clock in milliseconds since the Unix epoch (capability `clock`). Prefer it, or
 * `context.now`, to `Date.now()`, which is not available in the component.
 */
export function now() {
  return integer('now', call(() => clockApi.now()));
}

/** Any customer of the calling shop (capability `customers:read`); `not-found` for other ids. */
export function readCustomer(id) {
  const customerId = integer('id', id);
  return fromHost(call(() => customersApi.read(customerId)));
}

/**
 * Orders (with items) and behaviours since `since` (ms), newest first, of up to 1,000 customers
 * of the calling shop, in the order asked (capability `customers:read`). Ids of other shops are
 * left out. A batch may hold several events of one customer: ask for each customer once.
 */
export function histories(ids, since) {
  if (!Array.isArray(ids)) throw invalid('ids: expected a list of customer ids');
  const list = ids.map((id, i) => integer(`ids[${i}]`, id));
  const from = integer('since', since);
  return fromHost(call(() => customersApi.histories(list, from)));
}

/**
 * The shop's context with its distributions over the last `windowDays` days (null: all time),
 * e.g. for RFM over a configurable window (capability `customers:read`).
 */
export function shopContext(windowDays = null) {
  const days = windowDays === null || windowDays === undefined ? null : u32('windowDays', windowDays);
  return fromHost(call(() => shopApi.context(days)));
}

/** Buyers on one page at most. */
export const MAX_PAGE = 1000;

/**
 * Up to `limit` (1 to 1,000) buyers with an id above `after` (null: from the first), by id;
 * ask for the next page with the last id of this one. A short page is the last
 * (capability `customers:read`, since kith:plugin@0.2.0).
 */
export function buyers(after = null, limit = MAX_PAGE) {
  const from = after === null || after === undefined ? null : integer('after', after);
  const n = u32('limit', limit);
  return fromHost(call(() => summariesApi.buyers(from, n)));
}

/** Every buyer of the shop, by id, read `page` at a time (clamped to 1..=1000). */
export function* allBuyers(page = MAX_PAGE) {
  const size = Math.min(MAX_PAGE, Math.max(1, Math.trunc(Number(page)) || 1));
  let after = null;
  for (;;) {
    const list = buyers(after, size);
    yield* list;
    if (list.length < size) return;
    after = list[list.length - 1].customerId;
  }
}
