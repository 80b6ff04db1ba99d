"""Cases read as unknowns (issue 15): an opaque name, and a reveal in steps that each reader
takes at their own pace (history and images -> findings -> diagnosis -> discussion).

What a step has not revealed is never handed to the page (not hidden by CSS: absent), so the
rule lives here: :func:`view` returns only the sections and key images (with their captions)
the reader's step allows, and the page opens the viewer on the first image with no teaching
overlay until :attr:`UnknownView.diagnosis_revealed`.

This replaces ``case_revealed_for`` (the older rule that a case with questions kept its
diagnosis hidden on ``/cases/<slug>?unknown=1`` until the reader had answered every question).
That page mode is gone (the link now leads here), and the reveal is the reader's own click:
the case of the day is read mostly by visitors, who cannot answer questions, and every
shipped case has questions, so tying the reveal to answering would leave most unknowns
locked for good. The part of the old rule that protects assessment is kept, in one place:
while the reader has an unfinished exam attempt that asks about the case, every step past the
history and images is refused (an open exam must not leak answers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    Case,
    KeyImage,
    Question,
    UnknownReveal,
    User,
)
from app.services.access import Permission, require
from app.services.quizzes.reviews import open_exam_question_ids

HISTORY, FINDINGS, DIAGNOSIS, DISCUSSION = 0, 1, 2, 3
LAST_STEP = DISCUSSION
#: The case sections each step adds, in page order.
STEP_SECTIONS: dict[int, tuple[str, ...]] = {
    HISTORY: ("history",),
    FINDINGS: ("findings",),
    DIAGNOSIS: ("diagnosis_text", "differential"),
    DISCUSSION: ("discussion", "teaching_points", "references"),
}
#: What the button that takes a reader to a step says.
STEP_ACTIONS = {
    FINDINGS: "Reveal the findings",
    DIAGNOSIS: "Reveal the diagnosis",
    DISCUSSION: "Reveal the discussion and references",
}
#: Visitors keep their steps in the signed session cookie; past this many the oldest go.
MAX_VISITOR_STEPS = 100


@dataclass(frozen=True)
class UnknownView:
    """What an unknown's page may show at the reader's step."""

    case: Case
    number: int
    step: int
    sections: list[str]
    key_images: list[KeyImage] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The neutral name of the page ("Unknown 12"): nothing about the case."""
        return f"Unknown {self.number}"

    @property
    def diagnosis_revealed(self) -> bool:
        """From here on the viewer may open on the key image with the teaching overlay."""
        return self.step >= DIAGNOSIS

    @property
    def complete(self) -> bool:
        return self.step >= LAST_STEP

    @property
    def next_step(self) -> int | None:
        return None if self.complete else self.step + 1

    @property
    def next_action(self) -> str:
        return STEP_ACTIONS.get(self.step + 1, "")


def unknown_number(token: str) -> int:
    """The number in an unknown's label, 1000-9999, drawn from its opaque token: the same on
    every device, and not the case's id, which keys the case's public annotation API (its
    teaching overlay names the lesion) and counts up in the order cases were added."""
    digest = hashlib.sha256(f"unknown-label:{token}".encode()).digest()
    return 1000 + int.from_bytes(digest[:4], "big") % 9000


def get_unknown(session: Session, token: str, *, actor: User | None) -> Case:
    """The case whose unknown token is ``token``, if the actor may read it, else NotFound."""
    case = session.scalars(select(Case).where(Case.unknown_token == token[:32])).first()
    if case is None:
        raise NotFound("No such unknown.")
    require(actor, Permission.VIEW, case)
    return case


def _stored(session: Session, case: Case, actor: User) -> UnknownReveal | None:
    return session.scalars(
        select(UnknownReveal).where(
            UnknownReveal.user_id == actor.id, UnknownReveal.case_id == case.id
        )
    ).first()


def current_step(
    session: Session, case: Case, *, actor: User | None, visitor_steps: dict[str, int]
) -> int:
    """The reader's step on this unknown: stored for a signed-in reader, else from the
    visitor's session (``visitor_steps``: case id -> step)."""
    if actor is not None:
        row = _stored(session, case, actor)
        return row.step if row is not None else HISTORY
    value = visitor_steps.get(str(case.id), HISTORY)
    return value if isinstance(value, int) and HISTORY <= value <= LAST_STEP else HISTORY


def _open_exam_asks_about(session: Session, case: Case, actor: User) -> bool:
    question_ids = set(session.scalars(select(Question.id).where(Question.case_id == case.id)))
    return bool(question_ids and question_ids & open_exam_question_ids(session, actor.id))


def reveal(
    session: Session,
    case: Case,
    step: int,
    *,
    actor: User | None,
    visitor_steps: dict[str, int],
) -> int:
    """Take the reader to ``step`` (one step on from where they are; a repeated click on a
    step already revealed changes nothing) and remember it. Returns the reader's step.

    Visitors: ``visitor_steps`` is updated in place (the caller keeps it in the session).
    Refused: a step out of range or one that skips ahead (Invalid); the findings or later while
    the reader's unfinished exam asks about this case (Conflict).
    """
    now = current_step(session, case, actor=actor, visitor_steps=visitor_steps)
    if not HISTORY < step <= LAST_STEP:
        raise Invalid("There is no such step to reveal.")
    if step <= now:
        return now
    if step != now + 1:
        raise Invalid("Reveal the steps in order.")
    # From the findings on: the walk counts a findings sentence as an answer too (a question
    # may ask for the sign the findings name), so an open exam keeps them back as well.
    if step >= FINDINGS and actor is not None and _open_exam_asks_about(session, case, actor):
        raise Conflict(
            "Your unfinished exam asks about this case: finish it before revealing the "
            f"{'findings' if step == FINDINGS else 'diagnosis'}."
        )
    if actor is None:
        visitor_steps[str(case.id)] = step
        while len(visitor_steps) > MAX_VISITOR_STEPS:
            visitor_steps.pop(next(iter(visitor_steps)))
        return step
    row = _stored(session, case, actor)
    if row is None:
        row = UnknownReveal(user_id=actor.id, case_id=case.id, step=step)
        session.add(row)
    else:
        row.step, row.updated_at = step, utcnow()
    session.flush()
    return step


def view(
    session: Session, case: Case, *, actor: User | None, visitor_steps: dict[str, int]
) -> UnknownView:
    """The unknown at the reader's step: revealed sections that have text, and the key
    images (with their captions) once the diagnosis is revealed."""
    step = current_step(session, case, actor=actor, visitor_steps=visitor_steps)
    sections = [
        name
        for s in range(HISTORY, step + 1)
        for name in STEP_SECTIONS[s]
        if getattr(case, name, "")
    ]
    return UnknownView(
        case=case,
        number=unknown_number(case.unknown_token),
        step=step,
        sections=sections,
        key_images=list(case.key_images) if step >= DIAGNOSIS else [],
    )
