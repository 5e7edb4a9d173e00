"""The base of sinecheck's string enums: a member is its text wherever it goes."""

from __future__ import annotations

import enum


class TextEnum(str, enum.Enum):
    """An enum whose members compare, hash, print and encode to JSON as their value (``str(Grade.ULP) == "ulp"``),
    so files and messages keep the words users read, and code gets a closed set of names."""

    def __str__(self) -> str:
        return str(self.value)
