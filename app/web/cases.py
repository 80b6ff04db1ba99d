"""Case pages: the list, a case, and the author's editor, preview, history and publishing."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length

from app.db import get_session
from app.errors import TeachfileError
from app.markup import MAX_FIELD_CHARS
from app.models import KeyImage, Series, Visibility
from app.models.case import LABEL_KINDS, SECTION_FIELDS
from app.services import cases, identifier_gate, inbox
from app.services.access import Permission
from app.web.guard import (
    current_actor,
    page_arg,
    permission_required,
    remote_addr,
    run,
    signed_in_actor,
    submit,
)

bp = Blueprint("cases", __name__, url_prefix="/cases")

LABEL_FIELDS = {
    "modality": "Modalities",
    "body_region": "Body regions",
    "tag": "Tags",
    "audience": "Audience (e.g. rural generalist, must not miss, resident)",
    "small_hospital_modality": "Readable at a small hospital with (X-ray, ultrasound, CT)",
}


class EditForm(FlaskForm):
    base_revision = HiddenField()
    title = StringField("Title", validators=[DataRequired(), Length(max=300)])
    diagnosis = StringField("Diagnosis (short)", validators=[Length(max=300)])
    difficulty = SelectField("Difficulty", choices=[SelectChoice(d, d) for d in cases.DIFFICULTIES])
    certainty = SelectField(
        "How the diagnosis was confirmed",
        choices=[SelectChoice(c, c or "not stated") for c in cases.CERTAINTIES],
    )


for _kind, _label in LABEL_FIELDS.items():
    setattr(
        EditForm,
        f"label_{_kind}",
        StringField(_label + ", comma-separated", validators=[Length(max=2000)]),
    )
for _name in SECTION_FIELDS:
    setattr(
        EditForm,
        f"section_{_name}",
        TextAreaField(cases.SECTION_TITLES[_name], validators=[Length(max=MAX_FIELD_CHARS)]),
    )


class PublishForm(FlaskForm):
    visibility = RadioField(
        "Who may read it",
        choices=[
            SelectChoice("private", "Private: its authors"),
            SelectChoice("institution", "My institution"),
            SelectChoice("public", "Public: everyone"),
        ],
        default="institution",
    )
    confirm = BooleanField("I checked every passage listed: none identifies a patient.")


class DeleteForm(FlaskForm):
    confirm_slug = StringField(
        "Type the case's short name to confirm", validators=[DataRequired(), Length(max=80)]
    )


def _content(form: EditForm) -> cases.CaseContent:
    return cases.CaseContent(
        title=form.title.data or "",
        diagnosis=form.diagnosis.data or "",
        difficulty=form.difficulty.data or "intermediate",
        certainty=form.certainty.data or "",
        labels={
            kind: [v.strip() for v in (getattr(form, f"label_{kind}").data or "").split(",")]
            for kind in LABEL_KINDS
        },
        sections={name: getattr(form, f"section_{name}").data or "" for name in SECTION_FIELDS},
    )


class ConfirmRevisionForm(FlaskForm):
    revision = HiddenField()


def _fill(form: EditForm, content: cases.CaseContent, revision: int) -> None:
    form.base_revision.data = str(revision)
    form.title.data, form.diagnosis.data = content.title, content.diagnosis
    form.difficulty.data, form.certainty.data = content.difficulty, content.certainty
    for kind in LABEL_KINDS:
        getattr(form, f"label_{kind}").data = ", ".join(content.labels.get(kind, []))
    for name in SECTION_FIELDS:
        getattr(form, f"section_{name}").data = content.sections.get(name, "")


@bp.get("/")
def index() -> ResponseReturnValue:
    actor = current_actor()
    filters = cases.CaseFilters(
        **{
            key: request.args.get(key, "")[:80]
            for key in ("modality", "body_region", "difficulty", "certainty", "tag")
        }
    )
    session = get_session()
    page = cases.list_cases(session, actor=actor, filters=filters, page=page_arg())
    options = cases.filter_options(session, actor=actor)
    return render_template("cases/index.html", page=page, filters=filters, options=options)


@bp.get("/mine")
@permission_required(Permission.AUTHOR_CASES)
def mine() -> ResponseReturnValue:
    return render_template(
        "cases/mine.html", items=cases.my_cases(get_session(), actor=signed_in_actor())
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def new() -> ResponseReturnValue:
    session = get_session()
    study_ids = [int(s) for s in request.values.getlist("study") if s.isdigit() and len(s) < 10]
    studies = [
        inbox.get_study(session, study_id, actor=signed_in_actor()) for study_id in study_ids
    ]
    form = FlaskForm()
    if request.method == "POST" and form.validate_on_submit():
        case = cases.create_case(
            session,
            actor=signed_in_actor(),
            study_ids=study_ids,
            title=request.form.get("title", "")[:300],
            remote_addr=remote_addr(),
        )
        session.commit()
        flash("Draft created. It autosaves while you write.", "success")
        return redirect(url_for("cases.edit", slug=case.slug))
    return render_template("cases/new.html", studies=studies, form=form)


@bp.get("/<slug>")
def detail(slug: str) -> ResponseReturnValue:
    return _render_case(slug, preview=False)


@bp.get("/<slug>/preview")
@permission_required(Permission.AUTHOR_CASES)
def preview(slug: str) -> ResponseReturnValue:
    cases.get_case_for_edit(get_session(), slug, actor=signed_in_actor())
    return _render_case(slug, preview=True)


def _render_case(slug: str, *, preview: bool) -> ResponseReturnValue:
    session = get_session()
    actor = current_actor()
    case = cases.get_case(session, slug, actor=actor)
    if request.args.get("unknown") == "1" and not preview:
        # The old unknown mode (the slug and title gave the answer away): the real one.
        return redirect(url_for("unknowns.detail", token=case.unknown_token))
    return render_template(
        "cases/detail.html",
        case=case,
        series=cases.case_series(session, case),
        preview=preview,
        editor=cases.is_editor(actor, case),
        section_titles=cases.SECTION_TITLES,
        section_fields=SECTION_FIELDS,
    )


@bp.route("/<slug>/edit", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def edit(slug: str) -> ResponseReturnValue:
    session = get_session()
    case = cases.get_case_for_edit(session, slug, actor=signed_in_actor())
    form = EditForm()
    status = 200
    if form.validate_on_submit():
        base = form.base_revision.data or ""
        try:
            result = cases.save_draft(
                session,
                slug,
                _content(form),
                base_revision=int(base) if base.isdigit() else -1,
                actor=signed_in_actor(),
                remote_addr=remote_addr(),
            )
        except TeachfileError as err:
            session.commit()  # a refused stale save is kept as a conflicted revision
            flash(err.message, "error")
            status = err.status
        else:
            session.commit()
            if result.pending:
                flash(
                    "Saved, but readers still see the last confirmed text: check the passages "
                    "listed below and confirm, or fix them.",
                    "warning",
                )
            elif result.findings:
                flash("Saved. Some passages look like patient identifiers: see below.", "warning")
            else:
                flash("Saved.", "success")
            return redirect(url_for("cases.edit", slug=slug))
    elif form.is_submitted():
        status = 400
    else:
        _fill(form, cases.working_content(session, case), case.revision)
    pending = cases.pending_findings(session, case)
    confirm_form = ConfirmRevisionForm(revision=str(case.pending_revision or ""))
    return render_template(
        "cases/edit.html",
        case=case,
        form=form,
        series=cases.case_series(session, case),
        label_fields=LABEL_FIELDS,
        section_fields=SECTION_FIELDS,
        # A draft's findings are a warning; a published case's keep its edit pending.
        findings=pending if case.pending_revision else cases.check_identifiers(session, case),
        confirm_form=confirm_form,
    ), status


@bp.post("/<slug>/confirm-revision")
@permission_required(Permission.AUTHOR_CASES)
def confirm_revision(slug: str) -> ResponseReturnValue:
    """ "None of these identifies a patient": the pending revision goes live."""
    cases.get_case_for_edit(get_session(), slug, actor=signed_in_actor())  # 404 / 403 first
    form = ConfirmRevisionForm()
    value = form.revision.data or ""
    submit(
        form,
        lambda: cases.confirm_pending(
            get_session(),
            slug,
            revision=int(value) if value.isdigit() and len(value) < 9 else -1,
            actor=signed_in_actor(),
            remote_addr=remote_addr(),
        ),
        success="Confirmed: readers now see this revision.",
    )
    return redirect(url_for("cases.edit", slug=slug))


@bp.post("/<slug>/key-images")
@permission_required(Permission.AUTHOR_CASES)
def key_images(slug: str) -> ResponseReturnValue:
    picks = []
    captions: dict[tuple[int, int], str] = {}
    for value in request.form.getlist("key")[:50]:
        instance, _, frame = value.partition(":")
        if instance.isdigit() and frame.isdigit() and len(value) < 20:
            pick = (int(instance), int(frame))
            picks.append(pick)
            captions[pick] = request.form.get(f"caption:{value}", "")[:1000]
    done = run(
        lambda: cases.set_key_images(
            get_session(),
            slug,
            picks,
            actor=signed_in_actor(),
            captions=captions,
            confirm_identifiers=identifier_gate.confirmed_flag(
                request.form.get("confirm_identifiers")
            ),
            remote_addr=remote_addr(),
        ),
        success=f"{len(picks)} key image(s) saved.",
    )
    if done.findings:
        return render_template(
            "errors/error.html",
            status=done.status,
            message=done.error.message if done.error else "",
            findings=done.findings,
        ), done.status
    return redirect(url_for("cases.edit", slug=slug))


@bp.get("/<slug>/revisions")
@permission_required(Permission.AUTHOR_CASES)
def revisions(slug: str) -> ResponseReturnValue:
    case, items = cases.list_revisions(get_session(), slug, actor=signed_in_actor())
    return render_template("cases/revisions.html", case=case, revisions=items)


@bp.get("/<slug>/revisions/<int:number>/diff")
@permission_required(Permission.AUTHOR_CASES)
def diff(slug: str, number: int) -> ResponseReturnValue:
    against = request.args.get("against", "")
    old = int(against) if against.isdigit() and len(against) < 9 else number - 1
    case, diffs = cases.diff_revisions(get_session(), slug, old, number, actor=signed_in_actor())
    return render_template("cases/diff.html", case=case, diffs=diffs, old=old, new=number)


@bp.route("/<slug>/publish", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def publish(slug: str) -> ResponseReturnValue:
    session = get_session()
    case = cases.get_case_for_edit(session, slug, actor=signed_in_actor())
    form = PublishForm()
    done = submit(
        form,
        lambda: cases.publish(
            session,
            slug,
            visibility=Visibility(form.visibility.data),
            confirmed=bool(form.confirm.data),
            actor=signed_in_actor(),
            remote_addr=remote_addr(),
        ),
        success="Published.",
    )
    if done.result is not None:
        # a first publish may give the case a new slug (cases.publish)
        return redirect(url_for("cases.detail", slug=done.result.slug))
    # after submit: a refused publish was rolled back, so these are the findings it saw
    findings = cases.check_identifiers(session, case)
    return render_template(
        "cases/publish.html", case=case, form=form, findings=findings
    ), done.status


@bp.post("/<slug>/unpublish")
@permission_required(Permission.AUTHOR_CASES)
def unpublish(slug: str) -> ResponseReturnValue:
    session = get_session()
    cases.unpublish(session, slug, actor=signed_in_actor(), remote_addr=remote_addr())
    session.commit()
    flash("The case is a draft again; only its authors see it.", "success")
    return redirect(url_for("cases.edit", slug=slug))


@bp.route("/<slug>/delete", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def delete(slug: str) -> ResponseReturnValue:
    session = get_session()
    case = cases.get_case_for_edit(session, slug, actor=signed_in_actor())
    form = DeleteForm()
    done = submit(
        form,
        lambda: cases.delete(
            session,
            slug,
            confirm_slug=form.confirm_slug.data or "",
            actor=signed_in_actor(),
            remote_addr=remote_addr(),
        ),
        success="The case was deleted.",
    )
    if done.result is not None:
        return redirect(url_for("cases.mine"))
    return render_template("cases/delete.html", case=case, form=form), done.status


@bp.post("/<slug>/case-of-the-day")
@permission_required(Permission.AUTHOR_CASES)
def case_of_the_day(slug: str) -> ResponseReturnValue:
    session = get_session()
    cases.choose_case_of_the_day(
        session, date.today(), slug, actor=signed_in_actor(), remote_addr=remote_addr()
    )
    session.commit()
    flash("This is today's case of the day.", "success")
    return redirect(url_for("cases.detail", slug=slug))


@bp.app_context_processor
def _image_urls() -> dict[str, object]:
    """Thumbnail URLs of a series and of a key image, for case cards and pages."""

    def series_thumbnail(series: Series) -> str:
        return url_for(
            "images.series_thumbnail",
            study=series.study.study_instance_uid,
            series=series.series_instance_uid,
        )

    def key_image_url(key: KeyImage) -> str:
        instance = key.instance
        return url_for(
            "images.instance_thumbnail",
            study=instance.series.study.study_instance_uid,
            series=instance.series.series_instance_uid,
            instance=instance.sop_instance_uid,
        )

    return {"series_thumbnail": series_thumbnail, "key_image_url": key_image_url}
