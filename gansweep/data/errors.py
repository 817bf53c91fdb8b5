"""Errors raised by the data module (bad arguments raise plain ``ValueError``)."""

from __future__ import annotations


class MnistError(RuntimeError):
    """Base class of the data module's dataset errors."""


class CorruptFileError(MnistError):
    """A dataset file (in the cache or offered by a source) is not the canonical file it claims to be."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class MnistUnavailableError(MnistError):
    """Every source failed; the message lists each attempt, why it failed, and how to supply the files."""
