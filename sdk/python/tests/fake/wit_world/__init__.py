"""A stand-in for the generated `wit_world` package of a tag-rule world (tests only)."""

from typing import Protocol


class WitWorld(Protocol):
    pass
