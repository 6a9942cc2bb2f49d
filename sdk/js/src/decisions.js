// Constructors for decisions, deliveries and receipts, so plugin code reads as what it decides.
//
// Each builds the WIT value (`{ tag: 'add-tag', val: { customerId, tag, reason } }`) and checks
// its arguments: ids, points and times are integers (numbers, or BigInts within the safe range),
// text is text. A wrong argument throws `invalid`, which fails the call with that error rather
// than letting the runtime truncate or trap.

import { invalid } from './errors.js';
import { float, integer, optionalInteger, optionalString, string, u32 } from './convert.js';

/** Add a tag (its source is the plugin). Capability `tags:write`. */
export function addTag(customerId, tag, reason) {
  return { tag: 'add-tag', val: tagChange(customerId, tag, reason) };
}

/** Remove a tag this plugin set. Capability `tags:write`. */
export function removeTag(customerId, tag, reason) {
  return { tag: 'remove-tag', val: tagChange(customerId, tag, reason) };
}

function tagChange(customerId, tag, reason) {
  return { customerId: integer('customerId', customerId), tag: string('tag', tag), reason: string('reason', reason) };
}

/** Set a score under `model`: the plugin id, or `<plugin id>.<facet>`. Capability `scores:write`. */
export function setScore(customerId, model, value, label, explanation) {
  return {
    tag: 'set-score',
    val: {
      customerId: integer('customerId', customerId),
      model: string('model', model),
      value: float('value', value),
      label: optionalString('label', label),
      explanation: string('explanation', explanation),
    },
  };
}

/** Award points once per `sourceKey`; `expiresAt` in ms since the epoch, or null. Capability `points:write`. */
export function awardPoints(customerId, points, sourceKey, reason, expiresAt = null) {
  return { tag: 'award-points', val: pointsChange(customerId, points, sourceKey, reason, expiresAt) };
}

/** Claw back points once per `sourceKey`. Capability `points:write`. */
export function clawBackPoints(customerId, points, sourceKey, reason) {
  return { tag: 'claw-back-points', val: pointsChange(customerId, points, sourceKey, reason, null) };
}

function pointsChange(customerId, points, sourceKey, reason, expiresAt) {
  return {
    customerId: integer('customerId', customerId),
    points: integer('points', points),
    sourceKey: string('sourceKey', sourceKey),
    reason: string('reason', reason),
    expiresAt: optionalInteger('expiresAt', expiresAt),
  };
}

/** Move a customer to a tier. Capability `tiers:write`. */
export function changeTier(customerId, tier, reason) {
  return {
    tag: 'change-tier',
    val: { customerId: integer('customerId', customerId), tier: string('tier', tier), reason: string('reason', reason) },
  };
}

/**
 * Emit a `plugin.*` event about a customer (or none: null) with a JSON object payload, given as
 * an object (it is serialised) or as JSON text. Capability `events:emit`.
 */
export function emitEvent(customerId, eventType, payload = {}) {
  let text = payload;
  if (typeof payload !== 'string') {
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw invalid('payload: expected an object');
    text = JSON.stringify(payload);
  }
  return {
    tag: 'emit-event',
    val: { customerId: optionalInteger('customerId', customerId), eventType: string('eventType', eventType), payload: text },
  };
}

const DECISIONS = {
  'add-tag': (v) => addTag(v.customerId, v.tag, v.reason),
  'remove-tag': (v) => removeTag(v.customerId, v.tag, v.reason),
  'set-score': (v) => setScore(v.customerId, v.model, v.value, v.label, v.explanation),
  'award-points': (v) => awardPoints(v.customerId, v.points, v.sourceKey, v.reason, v.expiresAt),
  'claw-back-points': (v) => ({ tag: 'claw-back-points', val: pointsChange(v.customerId, v.points, v.sourceKey, v.reason, v.expiresAt) }),
  'change-tier': (v) => changeTier(v.customerId, v.tier, v.reason),
  'emit-event': (v) => emitEvent(v.customerId, v.eventType, v.payload),
};

/** A decision checked and in the runtime's shape (as the kind helpers hand them back). */
export function decision(value) {
  const make = value !== null && typeof value === 'object' ? DECISIONS[value.tag] : undefined;
  if (!make || value.val === null || typeof value.val !== 'object') {
    throw invalid(`not a decision: expected { tag, val } with a tag of ${Object.keys(DECISIONS).join(', ')}`);
  }
  return make(value.val);
}

/** A list of decisions, checked. */
export function decisions(list) {
  if (!Array.isArray(list)) throw invalid('expected a list of decisions');
  return list.map(decision);
}

/** The provider took the message; its own id, when it gives one. */
export function accepted(providerId = null) {
  return { tag: 'accepted', val: optionalString('providerId', providerId) };
}

/** The provider refused the message for good. */
export function rejected(reason) {
  return { tag: 'rejected', val: string('reason', reason) };
}

/** Try again after this many seconds. */
export function retryAfter(seconds) {
  return { tag: 'retry-after', val: u32('seconds', seconds) };
}

/** A delivery checked and in the runtime's shape. */
export function delivery(value) {
  const tag = value !== null && typeof value === 'object' ? value.tag : undefined;
  if (tag === 'accepted') return accepted(value.val);
  if (tag === 'rejected') return rejected(value.val);
  if (tag === 'retry-after') return retryAfter(value.val);
  throw invalid('not a delivery: use accepted(providerId), rejected(reason) or retryAfter(seconds)');
}

/** The statuses of a receipt. */
export const RECEIPT_STATUSES = Object.freeze(['delivered', 'failed', 'pending']);

/**
 * A delivery receipt: `status` is `delivered`, `failed` or `pending`; `messageId` the kernel's
 * message id when the provider echoes it, `providerId` the provider's, `at` ms since the epoch.
 */
export function receipt({ status, messageId = null, providerId = null, detail = null, at = null } = {}) {
  if (!RECEIPT_STATUSES.includes(status)) throw invalid(`status: expected one of ${RECEIPT_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
  return {
    messageId: optionalString('messageId', messageId),
    providerId: optionalString('providerId', providerId),
    status,
    detail: optionalString('detail', detail),
    at: optionalInteger('at', at),
  };
}

/** A list of receipts, checked. */
export function receipts(list) {
  if (!Array.isArray(list)) throw invalid('expected a list of receipts');
  return list.map((r) => receipt(r ?? {}));
}
