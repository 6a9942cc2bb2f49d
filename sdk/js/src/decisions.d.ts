import type { Decision, Delivery, Receipt, ReceiptStatus } from './types.js';

/** An id, points or a time: a safe integer (a BigInt within the safe range is taken too). */
type Int = number | bigint;

/** Add a tag (its source is the plugin). Capability `tags:write`. */
export declare function addTag(customerId: Int, tag: string, reason: string): Decision & { tag: 'add-tag' };
/** Remove a tag this plugin set. Capability `tags:write`. */
export declare function removeTag(customerId: Int, tag: string, reason: string): Decision & { tag: 'remove-tag' };
/** Set a score under `model`: the plugin id, or `<plugin id>.<facet>`. Capability `scores:write`. */
export declare function setScore(customerId: Int, model: string, value: number, label: string | null | undefined, explanation: string): Decision & { tag: 'set-score' };
/** Award points once per `sourceKey`; `expiresAt` in ms since the epoch, or null. Capability `points:write`. */
export declare function awardPoints(customerId: Int, points: Int, sourceKey: string, reason: string, expiresAt?: Int | null): Decision & { tag: 'award-points' };
/** Claw back points once per `sourceKey`. Capability `points:write`. */
export declare function clawBackPoints(customerId: Int, points: Int, sourceKey: string, reason: string): Decision & { tag: 'claw-back-points' };
/** Move a customer to a tier. Capability `tiers:write`. */
export declare function changeTier(customerId: Int, tier: string, reason: string): Decision & { tag: 'change-tier' };
/** Emit a `plugin.*` event (about a customer, or null) with a JSON object payload: an object, or JSON text. Capability `events:emit`. */
export declare function emitEvent(customerId: Int | null, eventType: string, payload?: object | string): Decision & { tag: 'emit-event' };
/** A decision checked and normalised. */
export declare function decision(value: Decision): Decision;
/** A list of decisions, checked. */
export declare function decisions(list: Decision[]): Decision[];

/** The provider took the message; its own id, when it gives one. */
export declare function accepted(providerId?: string | null): Delivery & { tag: 'accepted' };
/** The provider refused the message for good. */
export declare function rejected(reason: string): Delivery & { tag: 'rejected' };
/** Try again after this many seconds. */
export declare function retryAfter(seconds: Int): Delivery & { tag: 'retry-after' };
/** A delivery checked. */
export declare function delivery(value: Delivery): Delivery;

/** The statuses of a receipt. */
export declare const RECEIPT_STATUSES: readonly ReceiptStatus[];
/** A delivery receipt; the fields left out are null. A status other than delivered, failed or pending is `invalid`. */
export declare function receipt(fields: {
  status: ReceiptStatus | (string & {});
  messageId?: string | null;
  providerId?: string | null;
  detail?: string | null;
  at?: Int | null;
}): Receipt;
/** A list of receipts, checked. */
export declare function receipts(list: Array<Parameters<typeof receipt>[0]>): Receipt[];
