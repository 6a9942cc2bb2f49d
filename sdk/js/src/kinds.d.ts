import type { Customer, Decision, Delivery, InboundRequest, Message, Receipt, ShopContext, Subject } from './types.js';

/** A tag rule: decide for a batch of subjects; each decision names its customer. */
export declare function defineTagRule(functions: {
  evaluate(context: ShopContext, batch: Subject[]): Decision[];
}): { evaluate: (context: unknown, batch: unknown[]) => Decision[] };

/** A scoring model: score a batch of customers (`set-score` decisions, and tags if granted). */
export declare function defineScoringModel(functions: {
  score(context: ShopContext, batch: Customer[]): Decision[];
}): { score: (context: unknown, batch: unknown[]) => Decision[] };

/** A loyalty scheme: react to events; `review` (optional) is the periodic review of customers. */
export declare function defineLoyaltyScheme(functions: {
  onEvents(context: ShopContext, batch: Subject[]): Decision[];
  review?(context: ShopContext, batch: Customer[]): Decision[];
}): { onEvents: (context: unknown, batch: unknown[]) => Decision[]; review: (context: unknown, batch: unknown[]) => Decision[] };

/** A channel connector: send one message (its `id` is the idempotency key), and read a provider's receipts. */
export declare function defineChannelConnector(functions: {
  deliver(context: ShopContext, message: Message): Delivery;
  parseReceipt(context: ShopContext, request: InboundRequest): Receipt[];
}): { deliver: (context: unknown, message: unknown) => Delivery; parseReceipt: (context: unknown, request: unknown) => Receipt[] };

/** Conversions the kind helpers apply to what the host passes. */
export declare function context(value: unknown): ShopContext;
export declare function customer(value: unknown): Customer;
export declare function subject(value: unknown): Subject;
export declare function message(value: unknown): Message;
export declare function inboundRequest(value: unknown): InboundRequest;
