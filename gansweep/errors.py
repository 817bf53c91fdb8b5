"""The error a builder (``optim.build_optimizer``, ``schedules.build_schedule``) raises for a bad argument.

It is a ``ValueError`` that names the argument in :attr:`ArgumentError.arg`, so that ``config.validate``,
which asks the builders to check their config sections, can name the dotted config key (``schedule.gamma``).
"""

from __future__ import annotations


class ArgumentError(ValueError):
    """A bad argument of a builder; ``arg`` is its name (as the builder's keyword, and the config key)."""

    def __init__(self, arg: str, message: str) -> None:
        super().__init__(message)
        self.arg = arg
