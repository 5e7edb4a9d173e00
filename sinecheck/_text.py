"""Text formatting shared by every interface: numbers and plain / Markdown tables."""

from __future__ import annotations
