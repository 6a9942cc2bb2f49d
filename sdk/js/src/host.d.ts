import type { BuyerSummary, Customer, History, ShopContext } from './types.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
/** The log levels, lowest first. */
export declare const LOG_LEVELS: readonly LogLevel[];

/** Log lines, kept per shop and plugin (capability `log`); never fails: without the capability the line is dropped. */
export declare const log: {
  write(level: LogLevel, message: unknown): void;
  trace(message: unknown): void;
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};

/**
 * The shop's configuration of this plugin, parsed (capability `config`). With `defaults`, the
 * object's missing keys are taken from them: `config({ min_spent: 100000 }).min_spent`.
 */
export declare function config<T extends object = Record<string, any>>(defaults?: T): T & Record<string, any>;
export declare namespace config {
  /** The configuration as JSON text. */
  function raw(): string;
}

/** The key-value space of this shop and plugin (capability `kv`); writes take effect with the call's decisions. */
export declare const kv: {
  /** The bytes stored under `key`, or null. */
  get(key: string): Uint8Array | null;
  /** Store bytes, or a string as UTF-8; `quota-exceeded` past the kernel's limits. */
  set(key: string, value: Uint8Array | string): void;
  /** Remove a key; removing a missing key succeeds. */
  delete(key: string): void;
  /** The text stored under `key`, or null. */
  getText(key: string): string | null;
  /** The JSON value stored under `key`, or null when the key is not set. */
  getJson<T = any>(key: string): T | null;
  /** Store a value as JSON. */
  setJson(key: string, value: unknown): void;
};

/** The kernel's clock in ms since the epoch (capability `clock`); `Date.now()` is not available in the component. */
export declare function now(): number;
/** Any customer of the calling shop (capability `customers:read`); `not-found` for other ids. */
export declare function readCustomer(id: number | bigint): Customer;
/** Orders and behaviours since `since` (ms), newest first, of up to 1,000 customers, in the order asked (capability `customers:read`). */
export declare function histories(ids: Array<number | bigint>, since: number | bigint): History[];
/** The shop's context over the last `windowDays` days (null: all time) (capability `customers:read`). */
export declare function shopContext(windowDays?: number | null): ShopContext;
/** Buyers on one page at most. */
export declare const MAX_PAGE: 1000;
/** Up to `limit` (1 to 1,000) buyers with an id above `after`, by id; a short page is the last (capability `customers:read`). */
export declare function buyers(after?: number | bigint | null, limit?: number): BuyerSummary[];
/** Every buyer of the shop, by id, read `page` at a time. */
export declare function allBuyers(page?: number): Generator<BuyerSummary, void, void>;
