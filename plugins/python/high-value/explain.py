"""Numbers in reasons merchants read, as plugins/explain writes them for the Rust plugins:
money in major units with the shop's currency (`CNY 11.77`, never `1177.0`), and every
comparison printed with the precision it needs, so that a value below another never
reads as equal to it (`2 < average 2.004`, not `2.0 < average 2.0`)."""

MAX_EXTRA_DECIMALS = 6
"""Extra decimals a comparison may take beyond its usual precision."""

_DIGITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
                     "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_digits(currency: str) -> int:
    """Decimal places of a currency's minor unit (ISO 4217): 2 unless listed."""
    return _DIGITS.get(currency.upper(), 2)


def _format(value: float, places: int) -> str:
    # Like Rust's `{value:.places$}`: the exact binary value, rounded half to even.
    return f"{value:.{places}f}"


def fixed(value: float, decimals: int, trim: bool) -> str:
    text = _format(value, decimals)
    if not trim or "." not in text:
        return text
    return text.rstrip("0").rstrip(".")


def pair(value: float, other: float, decimals: int, trim: bool) -> tuple[str, str]:
    """`value` and what it is compared with, at `decimals` places, or more when two
    different values would print the same."""
    places = decimals
    while value != other and places < decimals + MAX_EXTRA_DECIMALS and _format(value, places) == _format(other, places):
        places += 1
    return fixed(value, places, trim), fixed(other, places, trim)


def number(value: float) -> str:
    """A measure such as an order count: at most 2 decimals, trailing zeros removed (`3`, `2.96`)."""
    return fixed(value, 2, True)


def numbers(value: float, other: float) -> tuple[str, str]:
    return pair(value, other, 2, True)


def _with_currency(amount: str, currency: str) -> str:
    return f"{currency} {amount}" if currency else amount


def _major(minor: float, currency: str) -> float:
    return minor / 10.0 ** minor_digits(currency)


def money(minor: float, currency: str) -> str:
    """An amount in minor units, in major units with the currency's code: `money(1177, "USD")` is `USD 11.77`."""
    return _with_currency(fixed(_major(minor, currency), minor_digits(currency), False), currency)


def money_pair(minor: float, other: float, currency: str) -> tuple[str, str]:
    a, b = pair(_major(minor, currency), _major(other, currency), minor_digits(currency), False)
    return _with_currency(a, currency), _with_currency(b, currency)


def money_triple(minor: float, other: float, third: float, currency: str) -> tuple[str, str, str]:
    """Like `money_pair` for three amounts printed together: all three at the precision
    that tells the first two apart."""
    a, b = pair(_major(minor, currency), _major(other, currency), minor_digits(currency), False)
    places = len(b.partition(".")[2])
    return (_with_currency(a, currency), _with_currency(b, currency),
            _with_currency(fixed(_major(third, currency), places, False), currency))
