"""Option types for numbers an operator types: finite, within a stated range, one-line errors.

click's ``FloatRange`` lets ``nan`` through (every comparison with it is false) and takes
``inf`` or ``1e308`` when there is no upper bound; a duration that large overflows the clocks
and queues it reaches.  These types refuse them as usage errors.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    _FloatType = click.ParamType[float]
else:  # click < 8.2 has no generic ParamType at run time
    _FloatType = click.ParamType


class Seconds(_FloatType):
    """A duration in seconds: a finite number in ``[minimum, maximum]``."""

    name = "seconds"

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float | int) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        if not self.minimum <= number <= self.maximum:
            self.fail(f"{value!r} is not between {self.minimum:g} and {self.maximum:g} seconds",
                      param, ctx)
        return number


def bounded_int(minimum: int, maximum: int) -> click.IntRange:
    """An integer in ``[minimum, maximum]`` (click's own type, with both bounds set)."""
    return click.IntRange(min=minimum, max=maximum)
