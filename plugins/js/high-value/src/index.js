// high-value, in JavaScript: the `high-value` tag for customers who spent more than a multiple of
// the shop's average order value, or placed more than a number of orders. The same rule, reasons
// and manifest as plugins/high-value (Rust); the definitions are in plugins/README.md.

import { addTag, config, defineTagRule, removeTag } from '@kith/plugin-sdk';
import { moneyTriple, number } from './explain.js';

export const TAG = 'high-value';

/** Why the customer is high-value at the shop's average order value, or null. */
export function reason(customer, averageOrderValue, currency, { aov_multiple: multiple, min_orders: minOrders }) {
  const spent = customer.stats.totalSpent;
  const threshold = multiple * averageOrderValue;
  if (averageOrderValue > 0 && spent > threshold) {
    const [s, t, a] = moneyTriple(spent, threshold, averageOrderValue, currency);
    return `spent ${s} > ${t} (${number(multiple)} × average order value ${a})`;
  }
  if (customer.stats.orderCount > minOrders) return `${customer.stats.orderCount} orders > ${minOrders}`;
  return null;
}

/** The tag decision for one customer, or null. */
export function decide(customer, averageOrderValue, currency, settings) {
  const held = customer.tags.some((t) => t.name === TAG && t.source === 'high-value');
  const why = reason(customer, averageOrderValue, currency, settings);
  if (why !== null && !held) return addTag(customer.id, TAG, why);
  if (why === null && held) return removeTag(customer.id, TAG, 'no longer above the thresholds');
  return null;
}

export const { evaluate } = defineTagRule({
  evaluate(context, batch) {
    const settings = config({ aov_multiple: 2, min_orders: 3 });
    return batch.map((s) => decide(s.customer, context.averageOrderValue, context.currency, settings)).filter((d) => d !== null);
  },
});
