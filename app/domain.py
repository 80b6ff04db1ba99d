"""The domain's words shared by every layer (question kinds): standard library only."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class QuestionKind(StrEnum):
    """What a question asks for. The values are the strings stored in ``questions.kind`` and
    written as ``type`` in a case's quiz.yaml, so existing rows and files keep their meaning."""

    SINGLE = "single"
    MULTIPLE = "multiple"
    FREE_TEXT = "freetext"
    HOTSPOT = "hotspot"


#: The kinds answered by choosing options (single best answer, multiple response).
CHOICE_KINDS: Final = (QuestionKind.SINGLE, QuestionKind.MULTIPLE)
