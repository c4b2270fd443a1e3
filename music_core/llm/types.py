"""What an analyst reads and writes: plain frozen dataclasses and one Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PromptInput:
    """One comparison, as the analyst sees it. ``lyrics`` and ``transcript`` are untrusted text."""

    lyrics: str
    transcript: str
    similarity: float
    wer: float
    cer: float
    reasons: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()  # aligned spans that differ, e.g. "lyrics 'x' / transcript 'y'"


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str


@dataclass(frozen=True)
class AnalystNote:
    text: str  # plain text, length-capped
    model_id: str


class AnalystError(Exception):
    """The analyst could not answer; the message is safe to record (no secrets, no response bodies)."""


class ComparisonAnalyst(Protocol):
    model_id: str

    def analyse(self, prompt_input: PromptInput) -> AnalystNote: ...
