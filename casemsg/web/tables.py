"""The list tables of the cases, mobile workers and message-log pages (django-tables2).

The rows come from the query modules, one page at a time, and are fed to a table as a list: the order
is the query's (the columns do not sort), and what a row shows beyond its own fields (the contact
status, a failed message's would-be text) is computed for the whole page before the table is drawn,
never per row. Columns computed from the whole record read `pk` (a column whose name is no attribute
costs tables2 a failed lookup per cell). Cells are built with format_html (every value escaped) rather
than a template per cell: a template column re-reads the page's whole context for each cell, which made
a page of 100 messages several times slower (bench/web_lists.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_tables2 as tables
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from casemsg.cases.models import Case
from casemsg.messaging.models import Message
from casemsg.messaging.reports import message_source
from casemsg.projects.models import Project
from casemsg.web.templatetags.casemsg_web import when_html
from casemsg.web.views.common import ChannelView, error_view
from casemsg.workers.models import MobileWorker

TEXT_SHOWN = 300  # characters of a message's text in the log (the CSV export has all of it)


def _error(code: str, title: str) -> SafeString:
    return format_html('<a href="{}#{}"><code>{}</code></a> {}', reverse("web:errors"), code, code, title)


def channels_html(channels: list[ChannelView]) -> SafeString:
    """A contact's channels at a glance: OK, or the problem's code and title."""
    return format_html_join(
        "",
        '<div class="small"><span class="muted">{}:</span> {}</div>',
        (
            (
                ch.name,
                mark_safe('<span class="ok">OK</span>')
                if ch.ok or ch.error is None
                else format_html('<span class="bad">{}</span>', _error(ch.error.code, ch.error.title)),
            )
            for ch in channels
        ),
    )


def _pill(show: bool, text: str) -> SafeString:
    return format_html(' <span class="pill">{}</span>', text) if show else mark_safe("")


class CaseTable(tables.Table):
    name = tables.Column(verbose_name="Case", orderable=False, empty_values=())
    case_type = tables.Column(verbose_name="Type", orderable=False)
    phone = tables.Column(verbose_name="Phone number", orderable=False, empty_values=(), accessor="pk")
    status = tables.Column(verbose_name="Contact status", orderable=False, empty_values=(), accessor="pk")
    modified_on = tables.Column(verbose_name="Modified", orderable=False)

    class Meta:
        attrs = {"class": "list cases"}
        empty_text = "No cases match."

    def __init__(self, data: list[Case], project: Project, **kwargs: Any):
        self.project = project
        super().__init__(data, **kwargs)

    def render_name(self, record: Case) -> SafeString:
        return format_html(
            '<a href="{}">{}</a><div class="muted small"><code>{}</code>{}</div>',
            reverse("web:case", args=[self.project.slug, record.case_id]),
            record.name or "(no name)",
            record.case_id,
            _pill(record.closed, "closed"),
        )

    def render_modified_on(self, value: datetime | None) -> SafeString:
        if value is None:
            return mark_safe('<span class="muted">—</span>')
        return when_html(value, self.project.default_time_zone)

    def render_phone(self, record: Case) -> SafeString:
        number = (record.properties or {}).get("contact_phone_number")
        return format_html("<code>{}</code>", number) if number else mark_safe('<span class="muted">—</span>')

    def render_status(self, record: Any) -> SafeString:
        return channels_html(record.channels)


class WorkerTable(tables.Table):
    username = tables.Column(verbose_name="Username", orderable=False)
    name = tables.Column(verbose_name="Name", orderable=False, default="—")
    numbers = tables.Column(verbose_name="Phone numbers", orderable=False, empty_values=(), accessor="pk")
    status = tables.Column(verbose_name="Contact status", orderable=False, empty_values=(), accessor="pk")

    class Meta:
        attrs = {"class": "list workers"}
        empty_text = "No mobile workers match."

    def __init__(self, data: list[MobileWorker], project: Project, **kwargs: Any):
        self.project = project
        super().__init__(data, **kwargs)

    def render_username(self, record: MobileWorker) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>{}',
            reverse("web:worker", args=[self.project.slug, record.pk]),
            record.username,
            _pill(not record.active, "inactive"),
        )

    def render_numbers(self, record: MobileWorker) -> SafeString:
        if not record.phone_numbers:
            return mark_safe('<span class="muted">—</span>')
        return format_html_join(
            "<br>",
            "<code>{}</code>{}",
            (
                (p["number"], mark_safe(' <span class="ok">verified</span>') if p.get("verified") else "")
                for p in record.phone_numbers
            ),
        )

    def render_status(self, record: Any) -> SafeString:
        return channels_html(record.channels)


class MessageTable(tables.Table):
    when = tables.Column(verbose_name="When", orderable=False, empty_values=(), accessor="pk")
    recipient = tables.Column(verbose_name="Contact", orderable=False, empty_values=(), accessor="pk")
    source = tables.Column(verbose_name="Source", orderable=False, empty_values=(), accessor="pk")
    text = tables.Column(verbose_name="Text", orderable=False, empty_values=())
    status = tables.Column(verbose_name="Status", orderable=False, empty_values=())

    class Meta:
        attrs = {"class": "list messages"}
        row_attrs = {"id": lambda record: f"message-{record.pk}"}
        empty_text = "No messages match."

    def __init__(self, data: list[Message], project: Project, request: HttpRequest, can_resend: bool, **kw: Any):
        """`can_resend`: the user's role may resend (the button is shown on failed outbound messages)."""
        self.project = project
        self.can_resend = can_resend
        self.csrf = get_token(request) if can_resend else ""
        self.back = request.get_full_path()
        super().__init__(data, **kw)

    def render_when(self, record: Message) -> SafeString:
        return format_html(
            '<span class="nowrap">{}</span><br><span class="muted">{} · {}</span>',
            when_html(record.created_on, self.project.default_time_zone, "second"),
            "← in" if record.direction == Message.IN else "→ out",
            record.channel,
        )

    def render_recipient(self, record: Message) -> SafeString:
        slug = self.project.slug
        if record.case is not None:
            who = format_html(
                '<a href="{}">{}</a>',
                reverse("web:case", args=[slug, record.case.case_id]),
                record.case.name or record.case.case_id,
            )
        elif record.worker is not None:
            who = format_html(
                '<a href="{}">{}</a>', reverse("web:worker", args=[slug, record.worker.pk]), record.worker.username
            )
        else:
            who = mark_safe('<span class="muted">—</span>')
        to = format_html("<br><code>{}</code>", record.to) if record.to else ""
        via = format_html('<br><span class="muted">via {}</span>', record.gateway_name) if record.gateway_name else ""
        return format_html("{}{}{}", who, to, via)

    def render_source(self, record: Message) -> SafeString:
        """Where the message came from (messaging.reports.message_source): a broadcast's, an alert's or a
        person's name beside it."""
        source, name = message_source(record)
        if not source:
            return mark_safe('<span class="muted">—</span>')
        return format_html("{}{}", source, format_html('<br><span class="muted">{}</span>', name) if name else "")

    def render_text(self, record: Any) -> SafeString:
        subject = format_html("<strong>{}</strong><br>", record.subject) if record.subject else ""
        if record.text:
            body = format_html("{}", Truncator(record.text).chars(TEXT_SHOWN))
        elif getattr(record, "unsent_text", ""):
            body = format_html(
                '<span class="unsent">{}</span> <span class="muted small">(would have been sent)</span>',
                Truncator(record.unsent_text).chars(TEXT_SHOWN),
            )
        else:
            body = format_html(
                '<span class="muted">{}</span>', Truncator((record.content or {}).get("text") or "").chars(TEXT_SHOWN)
            )
        return format_html("{}{}", subject, body)

    def render_status(self, record: Message) -> SafeString:
        css = {"failed": "bad", "delivered": "ok", "sent": "ok"}.get(record.status, "")
        parts = [format_html('<span class="{}">{}</span>', css, record.status)]
        if record.error:
            e = error_view(record.error, detail=record.error_detail)
            parts.append(format_html('<div class="bad">{}</div>', _error(e.code, e.title)))
            if e.detail:
                parts.append(format_html('<div class="small">{}</div>', e.detail))
        elif record.error_detail:
            parts.append(format_html('<div class="muted">{}</div>', record.error_detail))
        if record.delay_reason and record.status == Message.QUEUED:
            e = error_view(record.delay_reason)
            parts.append(format_html('<div class="warn">waiting: {}</div>', _error(e.code, e.title)))
        resendable = record.status == Message.FAILED and record.direction == Message.OUT
        if self.can_resend and resendable and (record.case_id or record.worker_id):
            parts.append(
                format_html(
                    '<form method="post" action="{}" class="resend">'
                    '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                    '<input type="hidden" name="next" value="{}">'
                    '<button type="submit" class="secondary small">Resend</button></form>',
                    reverse("web:message_resend", args=[self.project.slug, record.pk]),
                    self.csrf,
                    self.back,
                )
            )
        return format_html_join("", "{}", ((p,) for p in parts))
