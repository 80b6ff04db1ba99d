"""Case sets (courses): list, create, edit, publish, and reading through a set."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DecimalField,
    IntegerField,
    RadioField,
    SelectChoice,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.db import get_session
from app.markup import MAX_FIELD_CHARS
from app.models import Visibility
from app.services import case_sets, identifier_gate
from app.services.access import Permission, can
from app.web.guard import current_actor, permission_required, remote_addr, signed_in_actor, submit

bp = Blueprint("sets", __name__, url_prefix="/sets")


class SetForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=300)])
    description = TextAreaField("Description", validators=[Length(max=MAX_FIELD_CHARS)])
    objectives = TextAreaField("Learning objectives", validators=[Length(max=MAX_FIELD_CHARS)])
    cases = TextAreaField(
        "Cases, one short name (slug) a line, in order", validators=[Length(max=20_000)]
    )


class CreditForm(FlaskForm):
    credit_hours = DecimalField(
        "Credit hours (empty: no credit)", places=2, validators=[Optional(), NumberRange(0, 100)]
    )
    passing_score = IntegerField(
        "Passing score (%)", default=70, validators=[DataRequired(), NumberRange(1, 100)]
    )
    max_attempts = IntegerField(
        "Attempts allowed (empty: no limit)", validators=[Optional(), NumberRange(1, 100)]
    )
    faculty = TextAreaField("Faculty", validators=[Length(max=MAX_FIELD_CHARS)])
    disclosures = TextAreaField("Faculty disclosures", validators=[Length(max=MAX_FIELD_CHARS)])
    release_date = DateField("Release date", validators=[Optional()])
    review_date = DateField("Last review date", validators=[Optional()])
    expiry_date = DateField("Expiry date", validators=[Optional()])
    evaluation = TextAreaField(
        "Evaluation form: 'rating: question' or 'text: question', one a line",
        validators=[Length(max=20_000)],
    )
    time_limit_minutes = IntegerField(
        "Exam time limit in minutes (empty: none)", validators=[Optional(), NumberRange(1, 1440)]
    )
    credit_provider = StringField(
        "Provider issuing the credit (empty: the site's default)", validators=[Length(max=300)]
    )
    accreditation_statement = TextAreaField(
        "Accreditation statement (empty: the site's default)", validators=[Length(max=5000)]
    )
    credit_type = StringField(
        "Credit type, e.g. AMA PRA Category 1 Credit (empty: the site's default)",
        validators=[Length(max=200)],
    )


class PublishSetForm(FlaskForm):
    visibility = RadioField(
        "Who may take it",
        choices=[
            SelectChoice("private", "Only me"),
            SelectChoice("institution", "My institution"),
            SelectChoice("public", "Everyone"),
        ],
        default="public",
    )


def _content(form: SetForm) -> case_sets.SetContent:
    return case_sets.SetContent(
        title=form.title.data or "",
        description=form.description.data or "",
        objectives=form.objectives.data or "",
        case_slugs=tuple((form.cases.data or "").split()),
    )


@bp.get("/")
def index() -> ResponseReturnValue:
    return render_template(
        "sets/index.html", sets=case_sets.list_sets(get_session(), actor=current_actor())
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def new() -> ResponseReturnValue:
    form = SetForm()
    done = submit(
        form,
        lambda: case_sets.create_set(
            get_session(), _content(form), actor=signed_in_actor(), remote_addr=remote_addr()
        ),
    )
    if done.result is not None:
        return redirect(url_for("sets.detail", slug=done.result.slug))
    return render_template("sets/edit.html", form=form, case_set=None), done.status


@bp.get("/<slug>")
def detail(slug: str) -> ResponseReturnValue:
    actor = current_actor()
    case_set = case_sets.get_set(get_session(), slug, actor=actor)
    return render_template(
        "sets/detail.html",
        case_set=case_set,
        items=case_sets.readable_items(case_set, actor),
        editor=can(actor, Permission.EDIT, case_set),
        publish_form=PublishSetForm(),
    )


@bp.route("/<slug>/edit", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def edit(slug: str) -> ResponseReturnValue:
    session = get_session()
    case_set = case_sets.get_set_for_edit(session, slug, actor=signed_in_actor())
    form = SetForm()
    done = submit(
        form,
        lambda: case_sets.update_set(
            session,
            slug,
            _content(form),
            actor=signed_in_actor(),
            confirm_identifiers=identifier_gate.confirmed_flag(
                request.form.get("confirm_identifiers")
            ),
            remote_addr=remote_addr(),
        ),
        success="Saved.",
    )
    if done.result is not None:
        return redirect(url_for("sets.detail", slug=slug))
    if not form.is_submitted():
        form.title.data, form.description.data = case_set.title, case_set.description
        form.objectives.data = case_set.objectives
        form.cases.data = "\n".join(item.case.slug for item in case_set.items)
    return render_template(
        "sets/edit.html", form=form, case_set=case_set, findings=done.findings
    ), done.status


@bp.route("/<slug>/credit", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def credit(slug: str) -> ResponseReturnValue:
    session = get_session()
    case_set = case_sets.get_set_for_edit(session, slug, actor=signed_in_actor())
    form = CreditForm()
    done = submit(
        form,
        lambda: case_sets.update_credit(
            session,
            slug,
            _credit_settings(form),
            actor=signed_in_actor(),
            confirm_identifiers=identifier_gate.confirmed_flag(
                request.form.get("confirm_identifiers")
            ),
            remote_addr=remote_addr(),
        ),
        success="Credit settings saved.",
    )
    if done.result is not None:
        return redirect(url_for("sets.detail", slug=slug))
    if not form.is_submitted():
        form.credit_hours.data = case_set.credit_hours
        form.passing_score.data = case_set.passing_score
        form.max_attempts.data = case_set.max_attempts
        form.faculty.data, form.disclosures.data = case_set.faculty, case_set.disclosures
        form.release_date.data, form.review_date.data = (
            case_set.release_date,
            case_set.review_date,
        )
        form.expiry_date.data = case_set.expiry_date
        form.evaluation.data = case_sets.evaluation_lines(case_set)
        form.time_limit_minutes.data = case_set.time_limit_minutes
        form.credit_provider.data = case_set.credit_provider
        form.accreditation_statement.data = case_set.accreditation_statement
        form.credit_type.data = case_set.credit_type
    return render_template(
        "sets/credit.html", form=form, case_set=case_set, findings=done.findings
    ), done.status


def _credit_settings(form: CreditForm) -> case_sets.CreditSettings:
    return case_sets.CreditSettings(
        credit_hours=float(form.credit_hours.data) if form.credit_hours.data else None,
        passing_score=form.passing_score.data or 70,
        max_attempts=form.max_attempts.data,
        faculty=form.faculty.data or "",
        disclosures=form.disclosures.data or "",
        release_date=form.release_date.data,
        review_date=form.review_date.data,
        expiry_date=form.expiry_date.data,
        evaluation_lines=form.evaluation.data or "",
        time_limit_minutes=form.time_limit_minutes.data,
        credit_provider=form.credit_provider.data or "",
        accreditation_statement=form.accreditation_statement.data or "",
        credit_type=form.credit_type.data or "",
    )


@bp.post("/<slug>/publish")
@permission_required(Permission.AUTHOR_CASES)
def publish(slug: str) -> ResponseReturnValue:
    form = PublishSetForm()
    session = get_session()
    if form.validate_on_submit():
        # a first publish may give the set a new slug (case_sets.publish_set)
        slug = case_sets.publish_set(
            session,
            slug,
            Visibility(form.visibility.data),
            actor=signed_in_actor(),
            remote_addr=remote_addr(),
            confirm_identifiers=identifier_gate.confirmed_flag(
                request.form.get("confirm_identifiers")
            ),
        ).slug
        session.commit()
        flash("The set is published.", "success")
    return redirect(url_for("sets.detail", slug=slug))


@bp.get("/<slug>/cases/<case_slug>")
def step(slug: str, case_slug: str) -> ResponseReturnValue:
    """Read a case inside a set, with previous/next."""
    actor = current_actor()
    case_set = case_sets.get_set(get_session(), slug, actor=actor)
    items = case_sets.readable_items(case_set, actor)
    previous, following, position = case_sets.neighbours(items, case_slug)
    return render_template(
        "sets/step.html",
        case_set=case_set,
        case=items[position - 1],
        previous=previous,
        following=following,
        position=position,
        count=len(items),
    )
