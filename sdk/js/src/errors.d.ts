import type { ErrorKind, WitError } from './types.js';

/** The cases of the WIT `error` variant. */
export declare const ERROR_KINDS: readonly ErrorKind[];

/** A failure a plugin can handle: `kind` is the WIT case, `message` its text. Throw it from an export to fail the call with it. */
export declare class KithError extends Error {
  constructor(kind: ErrorKind, message: string);
  readonly kind: ErrorKind;
  /** The WIT value: `{ tag: kind, val: message }`. */
  toWit(): WitError;
}

/** The shop did not grant the capability this call needs. */
export declare function accessDenied(message: string): KithError;
/** The thing asked for does not exist in this shop. */
export declare function notFound(message: string): KithError;
/** A quota of this shop and plugin is used up. */
export declare function quotaExceeded(message: string): KithError;
/** An argument was refused. */
export declare function invalid(message: string): KithError;
/** The plugin could not do its work; the kernel retries the delivery. */
export declare function failed(message: string): KithError;

/** A KithError from what a host function threw (the error variant, or an exception with it as `payload`). */
export declare function fromWit(thrown: unknown): KithError;
/** The WIT error for what an export threw: a KithError as itself, anything else as `failed`. */
export declare function toWit(thrown: unknown): WitError;
/** A one-line description of a thrown value. */
export declare function describe(thrown: unknown): string;
