// The values of kith:plugin@0.2.0 (wit/v0.2/types.wit) as a plugin sees them through the SDK.
//
// The WIT's types are generated into wit.d.ts (`cargo xtask wit-types`; see its header for how
// the runtime represents them) and re-exported here under the same names. Only what the SDK adds
// to them is written by hand below.

import type * as wit from './wit.js';

export type * from './wit.js';

/** The cases of the WIT `error` variant (`WitError`). */
export type ErrorKind = wit.WitError['tag'];

/** A message to send through a channel connector, as `deliver` receives it. */
export interface Message extends wit.Message {
  /** The variables as an object (added by the SDK). */
  vars: Record<string, string>;
}

/** An HTTP request a provider posted to the kernel (a delivery receipt), as `parseReceipt` receives it. */
export interface InboundRequest extends wit.InboundRequest {
  /** The body as text (UTF-8; added by the SDK). */
  text(): string;
  /** The body parsed as JSON; a SyntaxError when it is not (added by the SDK). */
  json(): any;
  /** The first value of a header, by a name in any case, or null (added by the SDK). */
  header(name: string): string | null;
}
