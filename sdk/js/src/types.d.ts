// The values of kith:plugin@0.2.0 (wit/v0.2/types.wit) as a plugin sees them through the SDK.
//
// Written by hand from the WIT (jco's type generation could not read the WIT here). Records have
// camelCase fields; `s64`/`u64` (ids, money, points, ms) are numbers; an absent `option` is null;
// `list<u8>` is a Uint8Array; JSON travels as text (`payload`, `attributes`).

/** Milliseconds since the Unix epoch, UTC. */
export type Timestamp = number;
/** An amount in minor units of the shop's currency (fen for CNY). */
export type Money = number;

/** The cases of the WIT `error` variant. */
export type ErrorKind = 'access-denied' | 'not-found' | 'quota-exceeded' | 'invalid' | 'failed';
/** The WIT `error` variant, as an export throws it. */
export interface WitError {
  tag: ErrorKind;
  val: string;
}

export interface Profile {
  name: string | null;
  gender: string | null;
  /** `YYYY-MM-DD`. */
  birthday: string | null;
  province: string | null;
  city: string | null;
  /** The shop's custom attributes, a JSON object as text. */
  attributes: string;
}

/** Purchase statistics; refunds are already deducted. */
export interface Stats {
  totalSpent: Money;
  /** Paid orders not fully refunded. */
  orderCount: number;
  averageOrderValue: Money | null;
  firstOrderAt: Timestamp | null;
  lastOrderAt: Timestamp | null;
  refundCount: number;
  refundAmount: Money;
}

export interface Tag {
  name: string;
  /** `manual`, or the id of the plugin that set it. */
  source: string;
}

export interface Score {
  /** The model: a plugin id, or `<plugin id>.<facet>`. */
  model: string;
  value: number;
  label: string | null;
}

/** A customer as the kernel knows them when the call is made (parts a plugin does not `read` are empty). */
export interface Customer {
  id: number;
  profile: Profile;
  stats: Stats;
  tags: Tag[];
  scores: Score[];
  /** Points balance (may be negative after claw-backs). */
  points: number;
  tier: string | null;
  createdAt: Timestamp;
}

export interface OrderItem {
  sku: string;
  name: string | null;
  category: string | null;
  quantity: number;
  /** Price of one unit. */
  unitPrice: Money;
  /** Discount on the whole line. */
  discount: Money;
}

export interface Order {
  /** The shop's own order id. */
  id: string;
  customerId: number;
  amount: Money;
  refundedAmount: Money;
  /** `paid`, `partially_refunded` or `refunded`. */
  status: string;
  couponCode: string | null;
  paidAt: Timestamp;
  items: OrderItem[];
}

/** An entry of the shop's event log. */
export interface Event {
  seq: number;
  /** e.g. `order.paid`, `customer.upsert`, `behaviour`, `customer.merged`. */
  eventType: string;
  customerId: number | null;
  /** The event's payload, a JSON object as text. */
  payload: string;
  createdAt: Timestamp;
}

export type BehaviourKind = 'view' | 'favorite' | 'cart' | 'purchase';

export interface Behaviour {
  kind: BehaviourKind;
  sku: string | null;
  category: string | null;
  occurredAt: Timestamp;
}

/** What a customer did since a time, newest first. */
export interface History {
  customerId: number;
  /** Orders paid since the time, any status, with their items. */
  orders: Order[];
  behaviours: Behaviour[];
  /** The oldest entries past the kernel's caps were left out. */
  truncated: boolean;
}

/** One unit of work: a customer, and the event and order that brought them (a full re-run has none). */
export interface Subject {
  customer: Customer;
  event: Event | null;
  order: Order | null;
}

/** How a measure is spread over the shop's buyers. */
export interface Distribution {
  average: number;
  /** The 20th, 40th, 60th and 80th percentiles. */
  quintiles: number[];
}

/** The shop around a batch, over its buyers (customers with an order not fully refunded, within the window if any). */
export interface ShopContext {
  shopId: number;
  now: Timestamp;
  /** The window in days the distributions cover; null: all time. */
  windowDays: number | null;
  /** IANA time zone, e.g. `Asia/Shanghai`. */
  timeZone: string;
  /** ISO 4217 code, e.g. `CNY`. */
  currency: string;
  customerCount: number;
  buyerCount: number;
  /** Days since the last order (in the window). */
  recencyDays: Distribution;
  /** Orders (in the window), not counting fully refunded ones. */
  frequency: Distribution;
  /** Amount paid less refunds (of orders in the window). */
  monetary: Distribution;
  /** Total spent over order count, over all buyers. */
  averageOrderValue: number;
}

export interface TagChange {
  customerId: number;
  tag: string;
  reason: string;
}

export interface ScoreChange {
  customerId: number;
  /** The plugin's id, or `<plugin id>.<facet>` for a part of its score. */
  model: string;
  value: number;
  label: string | null;
  explanation: string;
}

export interface PointsChange {
  customerId: number;
  /** Positive; the decision says whether it is awarded or clawed back. */
  points: number;
  /** Makes the change idempotent: a second change with the same key is ignored. */
  sourceKey: string;
  reason: string;
  expiresAt: Timestamp | null;
}

export interface TierChange {
  customerId: number;
  tier: string;
  reason: string;
}

export interface EmittedEvent {
  customerId: number | null;
  /** Must start with `plugin.`; the kernel records the emitting plugin. */
  eventType: string;
  /** A JSON object as text. */
  payload: string;
}

/** What a plugin asks the kernel to do; the kernel checks each against the granted capabilities and applies them together, or none. */
export type Decision =
  | { tag: 'add-tag'; val: TagChange }
  /** Removes only a tag this plugin set. */
  | { tag: 'remove-tag'; val: TagChange }
  | { tag: 'set-score'; val: ScoreChange }
  | { tag: 'award-points'; val: PointsChange }
  | { tag: 'claw-back-points'; val: PointsChange }
  | { tag: 'change-tier'; val: TierChange }
  | { tag: 'emit-event'; val: EmittedEvent };

/** A message to send through a channel connector. */
export interface Message {
  /** The kernel's message id; send it as the idempotency key. */
  id: string;
  customerId: number;
  /** e.g. `sms`, `email`, `webhook`. */
  channel: string;
  /** The address on that channel: phone number, e-mail, URL. */
  recipient: string;
  template: string;
  /** The template's variables as [name, value] pairs, as the WIT has them. */
  variables: [string, string][];
  /** The same variables as an object (added by the SDK). */
  vars: Record<string, string>;
}

export type Delivery =
  /** The provider took the message; its own id, when it gives one. */
  | { tag: 'accepted'; val: string | null }
  /** The provider refused the message for good. */
  | { tag: 'rejected'; val: string }
  /** Try again after this many seconds. */
  | { tag: 'retry-after'; val: number };

/** An HTTP request a provider posted to the kernel (a delivery receipt). */
export interface InboundRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: Uint8Array;
  /** The body as text (UTF-8; added by the SDK). */
  text(): string;
  /** The body parsed as JSON; a SyntaxError when it is not (added by the SDK). */
  json(): any;
  /** The first value of a header, by a name in any case, or null (added by the SDK). */
  header(name: string): string | null;
}

export type ReceiptStatus = 'delivered' | 'failed' | 'pending';

export interface Receipt {
  /** The kernel's message id, when the provider echoes it. */
  messageId: string | null;
  /** The provider's id, as returned in `accepted`. */
  providerId: string | null;
  status: ReceiptStatus;
  detail: string | null;
  at: Timestamp | null;
}

/** One buyer's purchases, as the repeat-purchase models (BG/NBD, Gamma-Gamma) read them. */
export interface BuyerSummary {
  customerId: number;
  firstOrderAt: Timestamp;
  lastOrderAt: Timestamp;
  /** Distinct days with an order; the repeat purchases are one fewer. */
  purchaseDays: number;
  orderCount: number;
  /** Amount paid less refunds, over all orders. */
  totalSpent: Money;
  /** Amount paid less refunds over the orders of the days after the first. */
  repeatSpent: Money;
  /** Days from the first purchase day to the last (the models' recency, tₓ). */
  spanDays: number;
  /** Days from the first purchase day to today, by the kernel's clock (the models' age, T). */
  ageDays: number;
}
