// Errors: `KithError` is the WIT `error` variant as a JavaScript exception.
//
// Throw one from an export (`throw invalid('body is not JSON')`) and the call fails with that
// error; a host function that fails throws one. Anything else an export throws fails the call
// as `failed`, with the exception's message.

/** The cases of the WIT `error` variant. */
export const ERROR_KINDS = Object.freeze(['access-denied', 'not-found', 'quota-exceeded', 'invalid', 'failed']);

/** A failure a plugin can handle: `kind` is the WIT case, `message` its text. */
export class KithError extends Error {
  constructor(kind, message) {
    if (!ERROR_KINDS.includes(kind)) throw new TypeError(`unknown error kind \`${kind}\`: expected one of ${ERROR_KINDS.join(', ')}`);
    super(String(message));
    this.name = 'KithError';
    this.kind = kind;
  }

  /** The WIT value: `{ tag: kind, val: message }`. */
  toWit() {
    return { tag: this.kind, val: this.message };
  }
}

/** The shop did not grant the capability this call needs. */
export const accessDenied = (message) => new KithError('access-denied', message);
/** The thing asked for does not exist in this shop. */
export const notFound = (message) => new KithError('not-found', message);
/** A quota of this shop and plugin is used up. */
export const quotaExceeded = (message) => new KithError('quota-exceeded', message);
/** An argument was refused. */
export const invalid = (message) => new KithError('invalid', message);
/** The plugin could not do its work; the kernel retries the delivery. */
export const failed = (message) => new KithError('failed', message);

function witError(value) {
  return value !== null && typeof value === 'object' && ERROR_KINDS.includes(value.tag) && typeof value.val === 'string';
}

/**
 * A `KithError` from what a host function threw: the error variant itself, or an exception
 * carrying it as `payload` (how the QuickJS runtime and jco report an import's `err`).
 */
export function fromWit(thrown) {
  if (thrown instanceof KithError) return thrown;
  if (witError(thrown)) return new KithError(thrown.tag, thrown.val);
  if (thrown !== null && typeof thrown === 'object' && witError(thrown.payload)) return new KithError(thrown.payload.tag, thrown.payload.val);
  return failed(describe(thrown));
}

/** The WIT error value for what an export threw: a `KithError` as itself, anything else as `failed`. */
export function toWit(thrown) {
  if (thrown instanceof KithError) return thrown.toWit();
  if (witError(thrown)) return { tag: thrown.tag, val: thrown.val };
  return { tag: 'failed', val: describe(thrown) };
}

/** A one-line description of a thrown value. */
export function describe(thrown) {
  if (thrown instanceof Error) return thrown.name && thrown.name !== 'Error' ? `${thrown.name}: ${thrown.message}` : thrown.message;
  if (typeof thrown === 'string') return thrown;
  try {
    return JSON.stringify(thrown) ?? String(thrown);
  } catch {
    return String(thrown);
  }
}
