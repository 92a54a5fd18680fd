"""The cases pages: the list (search, filters, CSV export), a new case, and a case's page, where its
properties are edited, a contact problem's mechanical fix is applied with one click, the case is closed,
reopened or deleted, and a message is sent. Every change goes through casemsg.cases.services (one
transaction each); what the services refuse comes back as a form error or a message on the page."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from casemsg.cases import queries as case_queries
from casemsg.cases import services as case_services
from casemsg.cases.models import Case
from casemsg.contacts.status import statuses
from casemsg.core import errors, phone, spreadsheet
from casemsg.core.errors import InputError
from casemsg.messaging import queries as message_queries
from casemsg.messaging import render as templates
from casemsg.messaging import services
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from casemsg.scheduling import queries as schedule_queries
from casemsg.surveys import consent as survey_consent
from casemsg.web.filters import CaseFilterSet
from casemsg.web.forms import SendForm
from casemsg.web.forms_cases import CaseForm
from casemsg.web.tables import CaseTable
from casemsg.web.views.common import (
    attach_project,
    channel_views,
    error_view,
    found_or_404,
    paginate,
    project_or_404,
    query_without_page,
    staff_required,
    status_view,
    with_query,
)

CASES_PER_PAGE = 50
RECENT_MESSAGES = 50
UPCOMING_SENDS = 10
EXPORT_BATCH = 1000
EXPORT_FIELDS = ["case_id", "name", "case_type", "external_id", "owner_id", "parent_id", "closed"]
EXPORT_TIMES = ["opened_on", "modified_on", "closed_on"]


@staff_required
def case_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    filters = CaseFilterSet(request.GET, project)
    page = paginate(request, filters.results(), CASES_PER_PAGE)
    rows = list(page.object_list)
    attach_project(rows, project)
    # One batch for the whole page: statuses() loads registry entries, opt-outs and gateways in a few
    # queries instead of a few per case.
    for case, st in zip(rows, statuses(rows), strict=True):
        case.channels = channel_views(st)
    query = query_without_page(request)
    context = {
        "project": project,
        "filter": filters,
        "form": filters.form,
        "page": page,
        "query": query,
        "table": CaseTable(rows, project),
        "csv_url": reverse("web:cases_csv", args=[project.slug]) + (f"?{query}" if query else ""),
    }
    # The filter form asks with htmx: only the results are redrawn.
    template = "web/case_results.html" if getattr(request, "htmx", False) else "web/cases.html"
    return render(request, template, context)


@staff_required
def case_csv(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    """The filtered list as CSV, streamed in batches of EXPORT_BATCH cases (a few queries per batch):
    the case's fields, its SMS status (the problem code, or OK) and every property the cases use."""
    project = project_or_404(slug)
    qs = CaseFilterSet(request.GET, project).results()
    props = case_queries.property_names(qs)

    def rows() -> Iterator[list[object]]:
        for batch in case_queries.batches(qs, EXPORT_BATCH):
            attach_project(batch, project)
            for case, st in zip(batch, statuses(batch), strict=True):
                problem = st.sms.error
                row: list[object] = [getattr(case, f) for f in EXPORT_FIELDS]
                row += [t.isoformat() if (t := getattr(case, f)) else "" for f in EXPORT_TIMES]
                row += [problem.code if problem else "OK", (problem.fix or "") if problem else ""]
                row += [(case.properties or {}).get(p, "") for p in props]
                yield row

    # every cell made safe for a spreadsheet, the header too: property names are whatever was imported
    header = [*EXPORT_FIELDS, *EXPORT_TIMES, "sms_status", "sms_fix", *props]
    lines = spreadsheet.csv_lines(header, rows())
    resp = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="cases-{project.slug}.csv"'
    return resp


@staff_required
def case_new(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = CaseForm(request.POST or None, initial={"case_type": request.GET.get("case_type", "")})
    if request.method == "POST" and form.is_valid():
        try:
            case = case_services.create_case(project, form.change())
        except InputError as e:
            form.add_error(_case_field(e.code), f"{e.code}: {e.message}")
        else:
            flash.success(request, f"Case {case.name or case.case_id} created.")
            _local_fix_shown(request, project, form.change().properties.get("contact_phone_number"))
            return redirect(reverse("web:case", args=[project.slug, case.case_id]))
    return render(
        request,
        "web/case_form.html",
        {"project": project, "form": form, "case_types": case_queries.case_types(project)},
    )


def _case_field(code: str) -> str | None:
    return {
        errors.CASE_TYPE_REQUIRED: "case_type",
        errors.CASE_EXISTS: "case_id",
        errors.INVALID_CASE_ID: "case_id",
        errors.INVALID_PROPERTY: "other",
    }.get(code)


def _case(project: Project, case_id: str) -> Case:
    return found_or_404(case_queries.case(project, case_id))


def _here(project: Project, case: Case) -> str:
    return reverse("web:case", args=[project.slug, case.case_id])


@staff_required
def case_detail(request: HttpRequest, slug: str, case_id: str) -> HttpResponse:
    """The case's page. It also takes the page's forms (POST, with `action`): send, opt_in, properties,
    fix, close, reopen, delete."""
    project = project_or_404(slug)
    case = _case(project, case_id)
    case.project = project
    form = SendForm()
    property_errors: list[str] = []
    if request.method == "POST":
        action = request.POST.get("action", "send")
        if action == "opt_in":
            return _opt_in(request, project, case)
        if action == "fix":
            return _apply_fix(request, project, case)
        if action in ("close", "reopen"):
            case_services.set_closed(project, case, action == "close")
            flash.success(request, f"Case {'closed' if action == 'close' else 'reopened'}.")
            return redirect(_here(project, case))
        if action == "delete":
            if request.POST.get("confirm") != "yes":
                return redirect(_here(project, case) + "?confirm=delete")
            case_services.delete_case(project, case)
            flash.success(request, f"Case {case.name or case.case_id} deleted.")
            return redirect(reverse("web:cases", args=[project.slug]))
        if action == "properties":
            property_errors = _save_properties(request, project, case)
            if not property_errors:
                flash.success(request, "Properties saved; the contact status below is up to date.")
                return redirect(_here(project, case))
        elif action != "send":
            flash.error(request, "That form is not one of this page's; nothing was changed.")
            return redirect(_here(project, case))
        else:
            form = SendForm(request.POST)
            if form.is_valid() and send_from_form(
                request, form, project, services.SendRequest(case_id=case.case_id), case=case
            ):
                return redirect(_here(project, case))
    if request.GET.get("confirm") == "delete":
        return render(request, "web/case_delete.html", {"project": project, "case": case})
    st = statuses([case])[0]
    parent = case_queries.parent(case)
    recent = with_unsent_texts(
        project,
        message_queries.messages(project, message_queries.MessageFilter(case_id=case.case_id))[:RECENT_MESSAGES],
    )
    return render(
        request,
        "web/case.html",
        {
            "project": project,
            "case": case,
            "parent": parent,
            "status": status_view(st),
            # the corrected number when the phone problem has an obvious one (the one-click fix)
            "phone_fix": st.phone_check.suggestion if st.phone_check is not None and not st.phone_check.ok else None,
            "properties": sorted((case.properties or {}).items()),
            "property_errors": property_errors,
            "posted": request.POST if property_errors else None,
            "recent": recent,
            # the next messages its alerts and broadcasts will send it, rendered as they would be now
            "upcoming": schedule_queries.schedule_for_case(case, UPCOMING_SENDS),
            "form": form,
            "preview_url": with_query(reverse("web:message_preview", args=[project.slug]), case=case.case_id),
            "all_messages": with_query(reverse("web:messages", args=[project.slug]), case=case.case_id),
            "simulator": with_query(reverse("web:simulator", args=[project.slug]), case=case.case_id),
        },
    )


def with_unsent_texts(project: Project, msgs) -> list[Message]:
    """The messages, each failed one with the text it would have had (`unsent_text`), rendered for all at once."""
    rows = list(msgs)
    unsent = message_queries.unsent_texts(project, rows)
    for m in rows:
        m.unsent_text = unsent.get(m.pk, "")
    return rows


def _opt_in(request: HttpRequest, project: Project, case: Case) -> HttpResponse:
    try:
        req = survey_consent.request_opt_in(project, case)
    except InputError as e:
        flash.error(request, f"Opt-in request not sent: {e.code} — {e.message}")
    else:
        flash.success(request, f"Opt-in request sent to {req.phone_number}.")
    return redirect(_here(project, case))


def _apply_fix(request: HttpRequest, project: Project, case: Case) -> HttpResponse:
    """The phone number's mechanical fix (remove the dashes, the leading 00, the national 0), computed
    again here from the stored value: the page only says which correction it showed, so a number that
    changed meanwhile is not overwritten with a stale one."""
    current = (case.properties or {}).get("contact_phone_number")
    chk = phone.check(current, country=project.default_country) if current else None
    shown = request.POST.get("value", "")
    if chk is None or chk.ok or not chk.suggestion:
        flash.error(request, "This case's phone number has no one-click fix; edit the property instead.")
    elif chk.suggestion != shown:
        flash.error(request, "The phone number changed since the page was shown; check the fix again.")
    else:
        case_services.update_case(
            project, case, case_services.CaseChange(properties={"contact_phone_number": chk.suggestion})
        )
        local = phone.local_fix(current, project.default_country)
        changed = f": {local.describe()}" if local is not None else f" from {current} to {chk.suggestion}"
        flash.success(request, f"Phone number changed{changed}.")
    return redirect(_here(project, case))


def _save_properties(request: HttpRequest, project: Project, case: Case) -> list[str]:
    """The properties form: each row's key and value (an emptied value removes the property; so does its
    remove box), one new property, and the case's name. Returns the problems, or [] once saved."""
    post = request.POST
    props: dict[str, object | None] = {}
    current = case.properties or {}
    keys, values = post.getlist("key"), post.getlist("value")
    removed = set(post.getlist("remove"))
    if len(keys) != len(values):
        return ["The form was incomplete; reload the page and try again."]
    for key, value in zip(keys, values, strict=True):
        if key not in current:
            continue  # a property removed meanwhile (another tab, the API) stays removed
        if key in removed or not value.strip():
            props[key] = None
        elif value.strip() != current[key]:
            props[key] = value.strip()
    new_key, new_value = post.get("new_key", "").strip(), post.get("new_value", "").strip()
    if new_key:
        if not new_value:
            return [f"Give a value for the new property '{new_key}'."]
        props[new_key] = new_value
    elif new_value:
        return ["Give a name for the new property."]
    name = post.get("name")
    change = case_services.CaseChange(properties=props, name=name.strip() if name is not None else None)
    try:
        case_services.update_case(project, case, change)
    except InputError as e:
        return [f"{e.code}: {e.message}"]
    _local_fix_shown(request, project, props.get("contact_phone_number"))
    return []


def _local_fix_shown(request: HttpRequest, project: Project, typed: object) -> None:
    """Say how a local number typed on the page was stored (cases.services read it with the project's
    default country): "0711 222 333 → +254 711 222333 (Kenya, the project's default country)"."""
    local = phone.local_fix(typed, project.default_country) if typed else None
    if local is not None:
        flash.info(request, f"Phone number stored as an international number: {local.describe()}.")


def send_from_form(
    request: HttpRequest,
    form: SendForm,
    project: Project,
    req: services.SendRequest,
    case: Case | None = None,
    recipient_name: str = "",
) -> bool:
    """Send through messaging.services (the API's path). Returns False, with the problem added to the
    form, when the request itself is refused, or when the text names a field this contact does not have
    (it would go out as "(?)") and the person has not ticked "send anyway"; a message that fails its
    contact checks is still created (it is in the log with its error), so that is a success with a
    warning."""
    req.channel = form.cleaned_data["channel"]
    req.text = form.cleaned_data["text"]
    req.subject = form.cleaned_data["subject"] if req.channel == "email" else ""
    if req.channel == "whatsapp" and (
        form.cleaned_data.get("whatsapp_template") or form.cleaned_data.get("fallback_sms")
    ):
        variables = [v.strip() for v in (form.cleaned_data.get("whatsapp_variables") or "").split(",") if v.strip()]
        req.whatsapp = {"fallback_sms": bool(form.cleaned_data.get("fallback_sms")), "variables": variables}
        if form.cleaned_data.get("whatsapp_template"):
            req.whatsapp["template"] = form.cleaned_data["whatsapp_template"].strip()
    if req.text and not request.POST.get("send_anyway"):
        ctx = templates.Context(case=case, recipient_name=recipient_name or (case.name if case else ""))
        if case is not None:
            ctx.parent = case_queries.parent(case)
        try:
            unknown = templates.unknown_fields(req.text, ctx) + templates.unknown_fields(req.subject, ctx)
        except templates.RenderError:
            unknown = []  # malformed: messaging.services answers with CANNOT_RENDER_MESSAGE below
        if unknown:
            form.add_error(
                "text",
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} unknown for this contact and would be "
                f"sent as {templates.UNKNOWN}. Fix the text, or tick “send anyway”.",
            )
            form.unknown_fields = unknown  # type: ignore[attr-defined]
            return False
    try:
        # a person sends it: the reports name them (the event's source is `person`)
        name = request.user.get_username()
        full = getattr(request.user, "get_full_name", lambda: "")() or name
        msg = services.send(project, req, person=(name, full))
    except InputError as e:
        field = "text" if e.code in (errors.MESSAGE_BLANK, errors.CANNOT_RENDER_MESSAGE) else None
        form.add_error(field, f"{e.code}: {e.message}")
        return False
    msg.refresh_from_db(fields=["status", "error", "error_detail"])
    if msg.status == Message.FAILED:
        ev = error_view(msg.error, detail=msg.error_detail)
        flash.warning(request, f"Message {msg.pk} not sent: {ev.code} — {ev.title}. {ev.detail or ev.fix}")
    else:
        flash.success(request, f"Message {msg.pk} {msg.status}.")
    return True
