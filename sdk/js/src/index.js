// @kith/plugin-sdk: write Kith plugins in JavaScript, for kith:plugin@0.2.0.
//
//   import { defineTagRule, addTag, config, log } from '@kith/plugin-sdk';
//
//   export const { evaluate } = defineTagRule({
//     evaluate(context, batch) {
//       const { min_spent } = config({ min_spent: 100000 });
//       return batch
//         .filter(({ customer }) => customer.stats.totalSpent >= min_spent)
//         .map(({ customer }) => addTag(customer.id, 'vip', `spent ${customer.stats.totalSpent}`));
//     },
//   });
//
// `kith plugin build` bundles the plugin with this SDK and makes a WebAssembly component with
// componentize-qjs (QuickJS). Connectors import `request` from `@kith/plugin-sdk/http`.

import { describe } from './errors.js';
import { log } from './host.js';

export { ERROR_KINDS, KithError, accessDenied, failed, fromWit, invalid, notFound, quotaExceeded, toWit } from './errors.js';
export {
  RECEIPT_STATUSES,
  accepted,
  addTag,
  awardPoints,
  changeTier,
  clawBackPoints,
  decision,
  decisions,
  delivery,
  emitEvent,
  receipt,
  receipts,
  rejected,
  removeTag,
  retryAfter,
  setScore,
} from './decisions.js';
export { LOG_LEVELS, MAX_PAGE, allBuyers, buyers, config, histories, kv, log, now, readCustomer, shopContext } from './host.js';
export {
  context,
  customer,
  defineChannelConnector,
  defineLoyaltyScheme,
  defineScoringModel,
  defineTagRule,
  inboundRequest,
  message,
  subject,
} from './kinds.js';
export { fromHost, integer } from './convert.js';
export { fixed, utf8Decode, utf8Encode } from './text.js';

/** The WIT package the SDK builds against; say it in plugin.toml as `api-version = "0.2.0"`. */
export const API_VERSION = '0.2.0';

// The QuickJS runtime has no `console`: give it one that writes to the plugin's log.
if (typeof globalThis.console === 'undefined') {
  const show = (a) => {
    try {
      return JSON.stringify(a, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(a);
    } catch {
      return String(a);
    }
  };
  const line = (args) => args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.stack || describe(a) : show(a))).join(' ');
  globalThis.console = {
    log: (...args) => log.info(line(args)),
    info: (...args) => log.info(line(args)),
    debug: (...args) => log.debug(line(args)),
    trace: (...args) => log.trace(line(args)),
    warn: (...args) => log.warn(line(args)),
    error: (...args) => log.error(line(args)),
  };
}
