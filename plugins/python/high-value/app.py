"""high-value in Python: the same rule, decisions and reasons as plugins/high-value (Rust).

`high-value` when the customer's total spent is above `aov_multiple` × the shop's
average order value, or their order count is above `min_orders`; removed when
neither holds any more.
"""

import wit_world

import explain
import kith_sdk
from kith_sdk import types

TAG = "high-value"
DEFAULTS = {"aov_multiple": 2.0, "min_orders": 3}


class WitWorld(wit_world.WitWorld):
    @kith_sdk.export
    def evaluate(self, context: types.ShopContext, batch: list[types.Subject]) -> list[types.Decision]:
        config = settings(kith_sdk.config(DEFAULTS))
        decisions = []
        for subject in batch:
            decision = decide_in(subject.customer, context.average_order_value, context.currency, config)
            if decision is not None:
                decisions.append(decision)
        return decisions


def settings(config: dict) -> dict:
    """The configuration with its types checked, as the Rust plugin's deserialisation does."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise kith_sdk.invalid(f"configuration: unknown field `{unknown[0]}`, expected `aov_multiple` or `min_orders`")
    multiple, orders = config["aov_multiple"], config["min_orders"]
    if isinstance(multiple, bool) or not isinstance(multiple, (int, float)):
        raise kith_sdk.invalid("configuration: `aov_multiple` must be a number")
    if isinstance(orders, bool) or not isinstance(orders, int) or not 0 <= orders <= 0xFFFF_FFFF:
        raise kith_sdk.invalid("configuration: `min_orders` must be an integer from 0")
    return {"aov_multiple": float(multiple), "min_orders": orders}


def reason(customer: types.Customer, average_order_value: float, currency: str, config: dict) -> str | None:
    """Why the customer is high-value at the shop's average order value, if they are; money
    in major units of `currency` (the number alone when it is empty)."""
    spent = float(customer.stats.total_spent)
    threshold = config["aov_multiple"] * average_order_value
    if average_order_value > 0.0 and spent > threshold:
        spent_text, threshold_text, average_text = explain.money_triple(spent, threshold, average_order_value, currency)
        multiple = explain.number(config["aov_multiple"])
        return f"spent {spent_text} > {threshold_text} ({multiple} × average order value {average_text})"
    if customer.stats.order_count > config["min_orders"]:
        return f"{customer.stats.order_count} orders > {config['min_orders']}"
    return None


def decide_in(customer: types.Customer, average_order_value: float, currency: str, config: dict) -> types.Decision | None:
    """The tag decision for one customer, with reasons in the shop's currency."""
    held = any(tag.name == TAG and tag.source == "high-value" for tag in customer.tags)
    why = reason(customer, average_order_value, currency, config)
    if why is not None and not held:
        return kith_sdk.add_tag(customer.id, TAG, why)
    if why is None and held:
        return kith_sdk.remove_tag(customer.id, TAG, "no longer above the thresholds")
    return None
