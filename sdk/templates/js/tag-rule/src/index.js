// {{id}}: tags customers who spent at least `min_spent` (minor units), and removes the tag from
// those who no longer have (after a refund).

import { addTag, config, defineTagRule, log, removeTag } from '@kith/plugin-sdk';

const TAG = '{{id}}';

export const { evaluate } = defineTagRule({
  evaluate(context, batch) {
    const { min_spent: min } = config({ min_spent: 100000 });
    const decisions = [];
    for (const { customer } of batch) {
      const total = customer.stats.totalSpent;
      const tagged = customer.tags.some((t) => t.name === TAG);
      if (total >= min && !tagged) {
        decisions.push(addTag(customer.id, TAG, `spent ${total} (at least ${min})`));
      } else if (total < min && tagged) {
        decisions.push(removeTag(customer.id, TAG, `spent ${total} (less than ${min})`));
      }
    }
    log.info(`evaluated ${batch.length} customers`);
    return decisions;
  },
});
