"""A tag rule in Python: `big-spender` for customers who spent at least 1,000.00."""

import wit_world
from wit_world.imports import log, types


class WitWorld(wit_world.WitWorld):
    def evaluate(self, context: types.ShopContext, batch: list[types.Subject]) -> list[types.Decision]:
        log.write(log.Level.INFO, f"python evaluating {len(batch)} customers of shop {context.shop_id}")
        decisions = []
        for subject in batch:
            customer = subject.customer
            if customer.stats.total_spent >= 100_000:
                change = types.TagChange(customer.id, "big-spender", f"spent {customer.stats.total_spent}")
                decisions.append(types.Decision_AddTag(change))
        return decisions
