// {{id}}: a point per `unit` (minor units) of each paid order; the order id is the source key,
// so an event delivered twice awards once.

import { awardPoints, config, defineLoyaltyScheme } from '@kith/plugin-sdk';

export const { onEvents, review } = defineLoyaltyScheme({
  onEvents(context, batch) {
    const unit = Math.max(1, config({ unit: 100 }).unit);
    const decisions = [];
    for (const { customer, event, order } of batch) {
      if (event?.eventType !== 'order.paid' || !order) continue;
      const points = Math.floor(order.amount / unit);
      if (points > 0) {
        decisions.push(awardPoints(customer.id, points, `order:${order.id}`, `order ${order.id} paid`, null));
      }
    }
    return decisions;
  },

  // The periodic review (expiries, downgrades, birthdays): nothing to do here.
  review(context, batch) {
    return [];
  },
});
