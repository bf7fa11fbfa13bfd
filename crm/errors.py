"""The one base of every domain error: views turn these into messages, never into a 500."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused an action; `message` is shown to the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)
