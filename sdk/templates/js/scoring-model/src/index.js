// {{id}}: each customer's total spent as a multiple of the shop's average spend per customer,
// labelled `high` from 1x and `low` below.

import { defineScoringModel, fixed, setScore } from '@kith/plugin-sdk';

const MODEL = '{{id}}';

export const { score } = defineScoringModel({
  score(context, batch) {
    const average = context.monetary.average;
    return batch.map((customer) => {
      const ratio = average > 0 ? customer.stats.totalSpent / average : 0;
      const label = ratio >= 1 ? 'high' : 'low';
      // fixed() rounds like Rust and Python (a tie to even); toFixed() would round 0.125 up.
      return setScore(customer.id, MODEL, ratio, label, `${fixed(ratio, 2)}x the shop's average spend`);
    });
  },
});
