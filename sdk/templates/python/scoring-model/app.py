"""{{id}}: a scoring model that scores each customer's total spent against the
shop's average spend per buyer, labelled `high` (at least the average) or `low`."""

import wit_world

import kith_sdk
from kith_sdk import types

MODEL = "{{id}}"


class WitWorld(wit_world.WitWorld):
    @kith_sdk.export
    def score(self, context: types.ShopContext, batch: list[types.Customer]) -> list[types.Decision]:
        average = context.monetary.average
        return [score_one(customer, average) for customer in batch]


def score_one(customer: types.Customer, average: float) -> types.Decision:
    ratio = customer.stats.total_spent / average if average > 0 else 0.0
    label = "high" if ratio >= 1 else "low"
    return kith_sdk.set_score(customer.id, MODEL, ratio, label, f"{ratio:.2f}x the shop's average spend")
