"""The inbox (the inbound messages nothing handled: open, handled, archived; labels; search), the conversations
(the contacts who wrote, latest first) and a contact's thread with its reply box. All three update themselves
while open: htmx asks every few seconds for the list with the version the page shows (`?part=…&v=…`) and the
server answers 204 (nothing to swap) until something changed — no script of the page's own, nothing inline.

The views translate forms and call `casemsg.inbound.inbox` and `casemsg.inbound.conversations`; a reply goes
through the one send pipeline there (consent and opt-out apply; quiet hours do not hold a person's reply)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from casemsg.contacts.status import status
from casemsg.core.errors import InputError
from casemsg.inbound import conversations, inbox
from casemsg.inbound.models import InboxItem
from casemsg.messaging import reports
from casemsg.web.views.common import (
    attach_project,
    channel_views,
    error_view,
    paginate,
    project_or_404,
    staff_required,
)

ITEMS_PER_PAGE = 50
CONVERSATIONS_PER_PAGE = 50
POLL_SECONDS = 3  # how often an open inbox or thread asks whether anything changed


class InboxFilterForm(forms.Form):
    state = forms.ChoiceField(
        required=False, label="State", choices=[("", "open"), *((s, s) for s in InboxItem.STATES if s != "open")]
    )
    label = forms.CharField(required=False, max_length=inbox.LABEL_MAX, label="Label")
    q = forms.CharField(required=False, max_length=100, label="Search", help_text="text, phone number or name")


class LabelForm(forms.Form):
    name = forms.CharField(max_length=inbox.LABEL_MAX, label="New label")


class ReplyForm(forms.Form):
    text = forms.CharField(
        max_length=conversations.REPLY_MAX,
        label="Reply",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Sent by SMS as written, through the project's rules (consent, opt-out).",
    )


def _inbox_filter(form: InboxFilterForm) -> inbox.InboxFilter:
    d = form.cleaned_data if form.is_bound and form.is_valid() else {}
    return inbox.InboxFilter(state=d.get("state") or InboxItem.OPEN, label=d.get("label") or None, search=d.get("q"))


def _without(params: QueryDict, name: str) -> str:
    q = params.copy()
    q.pop(name, None)
    return q.urlencode()


def _person(request: HttpRequest) -> tuple[str, str]:
    """(username, name) of the person replying: the reports name them."""
    name = request.user.get_username()
    return name, getattr(request.user, "get_full_name", lambda: "")() or name


def _back(request: HttpRequest, default: str) -> str:
    back = request.POST.get("next", "")
    if back.startswith("/") and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return default


@staff_required
def inbox_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    form = InboxFilterForm(request.GET or None)
    f = _inbox_filter(form)
    try:
        version = inbox.version(project, f)
    except InputError:
        f = inbox.InboxFilter()
        version = inbox.version(project, f)
    if request.GET.get("part") == "list" and request.GET.get("v") == version:
        return HttpResponse(status=204)  # nothing changed: htmx swaps nothing
    page = paginate(request, inbox.items(project, f), ITEMS_PER_PAGE)
    for item in page.object_list:
        m = item.message
        item.contact_key = conversations.Contact(case=m.case, worker=m.worker).key if m.case or m.worker else ""
    url = reverse("web:inbox", args=[project.slug])
    shown = request.GET.copy()  # what the page shows, without the live update's own parameters
    shown.pop("part", None)
    shown.pop("v", None)
    here = f"{url}?{shown.urlencode()}" if shown else url
    query = _without(shown, "page")
    poll = f"{url}?{shown.urlencode() + '&' if shown else ''}{urlencode({'part': 'list', 'v': version})}"
    context = {
        "project": project,
        "form": form,
        "f": f,
        "page": page,
        "query": query,
        "here": here,
        "tabs": [(s, n) for s, n in inbox.state_counts(project).items()],
        "labels": inbox.labels(project),
        "label_form": LabelForm(),
        "poll_url": poll,
        "poll_seconds": POLL_SECONDS,
        "zone": reports.zone_name(project),
        "states": InboxItem.STATES,
    }
    if request.GET.get("part") == "list":
        return render(request, "web/_inbox_list.html", context)
    return render(request, "web/inbox.html", context)


@staff_required
@require_POST
def inbox_item(request: HttpRequest, slug: str, message_id: int) -> HttpResponse:
    """One item's state or labels (editors): back to the inbox as it was shown."""
    project = project_or_404(slug)
    action = request.POST.get("action", "")
    name = request.POST.get("label", "")
    try:
        if action in InboxItem.STATES:
            inbox.set_state(project, [message_id], action)
            inbox.item_of(project, message_id)  # 404 for a message that is not in the inbox
        elif action == "add_label":
            inbox.add_label(project, message_id, name)
        elif action == "remove_label":
            inbox.remove_label(project, message_id, name)
        else:
            flash.error(request, "Unknown action.")
    except InputError as e:
        flash.error(request, f"Not changed: {e.code} — {e.message}")
    return redirect(_back(request, reverse("web:inbox", args=[project.slug])))


@staff_required
@require_POST
def inbox_labels(request: HttpRequest, slug: str) -> HttpResponse:
    """Create a label, or delete one (editors)."""
    project = project_or_404(slug)
    try:
        if request.POST.get("action") == "delete":
            inbox.delete_label(project, request.POST.get("name", ""))
            flash.success(request, "Label deleted.")
        else:
            form = LabelForm(request.POST)
            if form.is_valid():
                inbox.label(project, form.cleaned_data["name"])
                flash.success(request, "Label added.")
            else:
                flash.error(request, "A label is a name of 1–40 characters.")
    except InputError as e:
        flash.error(request, f"{e.code} — {e.message}")
    return redirect(_back(request, reverse("web:inbox", args=[project.slug])))


@staff_required
def conversation_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_or_404(slug)
    search = (request.GET.get("q") or "").strip()[:100]
    number = request.GET.get("page", "1")
    page_no = int(number) if number.isdigit() and int(number) > 0 else 1
    offset = (page_no - 1) * CONVERSATIONS_PER_PAGE
    total, convs = conversations.conversations(project, search, CONVERSATIONS_PER_PAGE, offset)
    pages = max(1, -(-total // CONVERSATIONS_PER_PAGE))
    return render(
        request,
        "web/conversations.html",
        {
            "project": project,
            "q": search,
            "total": total,
            "conversations": convs,
            "page_no": page_no,
            "pages": pages,
            "zone": reports.zone_name(project),
            "open_count": inbox.state_counts(project)[InboxItem.OPEN],
        },
    )


@staff_required
def conversation(request: HttpRequest, slug: str, contact: str) -> HttpResponse:
    """A contact's thread (every message, every channel) and, for editors, the reply box."""
    project = project_or_404(slug)
    try:
        who = conversations.contact(project, contact)
    except InputError as e:
        raise Http404(e.message) from e
    here = reverse("web:thread", args=[project.slug, who.key])
    if request.method == "POST":
        form = ReplyForm(request.POST)
        if form.is_valid():
            try:
                msg = conversations.reply(project, who, form.cleaned_data["text"], person=_person(request))
            except InputError as e:
                flash.error(request, f"Not sent: {e.code} — {e.message}")
            else:
                if msg.status == "failed":
                    ev = error_view(msg.error, detail=msg.error_detail)
                    flash.warning(request, f"The reply could not go: {ev.code} — {ev.detail or ev.fix}")
                return redirect(here)
    else:
        form = ReplyForm()
    msgs = conversations.thread(project, who)
    for m in msgs:  # a message that never got its text shows its template
        m.shown = m.text or str((m.content or {}).get("text") or "")  # type: ignore[attr-defined]
    version = conversations.version(msgs)
    if request.GET.get("part") == "thread" and request.GET.get("v") == version:
        return HttpResponse(status=204)
    contact_obj = who.case if who.case is not None else who.worker
    assert contact_obj is not None
    attach_project([contact_obj], project)
    context = {
        "project": project,
        "who": who,
        "conversation": msgs,
        "total": conversations.thread_count(project, who),
        "form": form,
        "poll_url": f"{here}?{urlencode({'part': 'thread', 'v': version})}",
        "poll_seconds": POLL_SECONDS,
        "zone": reports.zone_name(project),
        "sms": channel_views(status(contact_obj))[0],
        "log_url": reverse("web:messages", args=[project.slug])
        + "?"
        + urlencode({"case": who.case.case_id} if who.case is not None else {"worker": who.worker.pk}),  # type: ignore[union-attr]
    }
    if request.GET.get("part") == "thread":
        return render(request, "web/_thread.html", context)
    return render(request, "web/conversation.html", context)
