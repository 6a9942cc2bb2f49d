// One helper per plugin kind: it wraps the plugin's functions as the world's exports.
//
//   export const { evaluate } = defineTagRule({ evaluate(context, batch) { ... } });
//
// The wrapper hands the functions plain values (numbers for ids and money, null for absent
// options), checks what they return (the decisions, the delivery, the receipts), and turns what
// they throw into the WIT `error`: a `KithError` as itself, anything else as `failed` with its
// message (and its stack logged at `error`, when the plugin may log). Exports are synchronous:
// an `async` function, which returns a Promise, fails with `failed`.

import { decisions, delivery, receipts } from './decisions.js';
import { describe, failed, KithError, toWit } from './errors.js';
import { bytes, fromHost } from './convert.js';
import { log } from './host.js';
import { utf8Decode } from './text.js';

function need(functions, name) {
  const f = functions?.[name];
  if (typeof f !== 'function') throw new TypeError(`expected a function \`${name}\``);
  return f.bind(functions);
}

function exported(name, body) {
  return function (...args) {
    try {
      return body(...args);
    } catch (e) {
      if (!(e instanceof KithError) && e instanceof Error && e.stack) log.error(`${name}: ${describe(e)}\n${e.stack}`);
      // The runtime maps only a plain `{ tag, val }` to the WIT error; anything else would trap.
      throw toWit(e);
    }
  };
}

function settle(name, result, check) {
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    throw failed(`${name} returned a Promise: the exports are synchronous, so do not make it async`);
  }
  return check(result);
}

/** The shop context as plain values. */
export const context = (value) => fromHost(value);
/** A customer as plain values. */
export const customer = (value) => fromHost(value);
/** A subject (`{ customer, event, order }`, the last two null when absent) as plain values. */
export const subject = (value) => fromHost(value);

/** A message to deliver as plain values, with `vars`: its variables as an object. */
export function message(value) {
  const m = fromHost(value);
  m.vars = Object.fromEntries(m.variables ?? []);
  return m;
}

/**
 * An inbound request (a receipt the provider posted) as plain values, with `text()`, `json()`
 * and `header(name)` (the first value of a header, by a name in any case).
 */
export function inboundRequest(value) {
  const r = fromHost(value);
  r.body = bytes(r.body) ?? new Uint8Array(0);
  return Object.assign(r, {
    text: () => utf8Decode(r.body),
    json: () => JSON.parse(utf8Decode(r.body)),
    header(name) {
      const lower = String(name).toLowerCase();
      const found = (r.headers ?? []).find(([n]) => String(n).toLowerCase() === lower);
      return found ? found[1] : null;
    },
  });
}

/** A tag rule: `evaluate(context, batch)` decides for a batch of subjects. */
export function defineTagRule(functions) {
  const evaluate = need(functions, 'evaluate');
  return {
    evaluate: exported('evaluate', (ctx, batch) => settle('evaluate', evaluate(context(ctx), batch.map(subject)), decisions)),
  };
}

/** A scoring model: `score(context, batch)` scores a batch of customers (`set-score` decisions). */
export function defineScoringModel(functions) {
  const score = need(functions, 'score');
  return {
    score: exported('score', (ctx, batch) => settle('score', score(context(ctx), batch.map(customer)), decisions)),
  };
}

/**
 * A loyalty scheme: `onEvents(context, batch)` reacts to subjects (orders paid and refunded,
 * profile changes); `review(context, batch)`, the periodic review of customers, decides nothing
 * when left out.
 */
export function defineLoyaltyScheme(functions) {
  const onEvents = need(functions, 'onEvents');
  const review = typeof functions?.review === 'function' ? functions.review.bind(functions) : () => [];
  return {
    onEvents: exported('onEvents', (ctx, batch) => settle('onEvents', onEvents(context(ctx), batch.map(subject)), decisions)),
    review: exported('review', (ctx, batch) => settle('review', review(context(ctx), batch.map(customer)), decisions)),
  };
}

/**
 * A channel connector: `deliver(context, message)` sends one message (use `message.id` as the
 * provider's idempotency key) and returns `accepted`, `rejected` or `retryAfter`;
 * `parseReceipt(context, request)` reads a receipt the provider posted.
 */
export function defineChannelConnector(functions) {
  const deliver = need(functions, 'deliver');
  const parseReceipt = need(functions, 'parseReceipt');
  return {
    deliver: exported('deliver', (ctx, msg) => settle('deliver', deliver(context(ctx), message(msg)), delivery)),
    parseReceipt: exported('parseReceipt', (ctx, request) =>
      settle('parseReceipt', parseReceipt(context(ctx), inboundRequest(request)), receipts),
    ),
  };
}
