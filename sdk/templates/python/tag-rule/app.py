"""{{id}}: a tag rule that tags customers who spent at least `min_spent` as `{{id}}`,
and takes the tag off again when their spending falls below it (refunds)."""

import wit_world

import kith_sdk
from kith_sdk import log, types

TAG = "{{id}}"
DEFAULTS = {"min_spent": 100_000}  # minor units: 100000 fen is 1,000.00 CNY


class WitWorld(wit_world.WitWorld):
    @kith_sdk.export
    def evaluate(self, context: types.ShopContext, batch: list[types.Subject]) -> list[types.Decision]:
        min_spent = kith_sdk.config(DEFAULTS)["min_spent"]
        decisions = []
        for subject in batch:
            decision = decide(subject.customer, min_spent)
            if decision is not None:
                decisions.append(decision)
        log.info(f"evaluated {len(batch)} customers")
        return decisions


def decide(customer: types.Customer, min_spent: int) -> types.Decision | None:
    total = customer.stats.total_spent
    tagged = any(tag.name == TAG for tag in customer.tags)
    if total >= min_spent and not tagged:
        return kith_sdk.add_tag(customer.id, TAG, f"spent {total} (at least {min_spent})")
    if tagged and total < min_spent:
        return kith_sdk.remove_tag(customer.id, TAG, f"spent {total} (less than {min_spent})")
    return None
