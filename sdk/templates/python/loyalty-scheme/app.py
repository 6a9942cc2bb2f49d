"""{{id}}: a loyalty scheme that awards a point per `unit` (minor units) of each
paid order, once per order."""

import wit_world

import kith_sdk
from kith_sdk import types

DEFAULTS = {"unit": 100}  # minor units per point: 100 fen, one point per yuan


class WitWorld(wit_world.WitWorld):
    @kith_sdk.export
    def on_events(self, context: types.ShopContext, batch: list[types.Subject]) -> list[types.Decision]:
        unit = kith_sdk.config(DEFAULTS)["unit"]
        decisions = []
        for subject in batch:
            event, order = subject.event, subject.order
            if order is None or event is None or event.event_type != "order.paid":
                continue
            points = order.amount // unit
            if points > 0:
                decisions.append(kith_sdk.award_points(
                    subject.customer.id, points, f"order:{order.id}", f"order {order.id} paid", None))
        return decisions

    @kith_sdk.export
    def review(self, context: types.ShopContext, batch: list[types.Customer]) -> list[types.Decision]:
        # The periodic review: expiries, downgrades, birthdays. Nothing to do here yet.
        return []
