from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from casemsg.cases.models import Case
from casemsg.gateways.models import Gateway
from casemsg.projects.models import Project
from casemsg.workers.models import MobileWorker


class MessagingEvent(models.Model):
    """Why messages exist (a broadcast, an alert, a survey, a keyword, an API call) and its outcome."""

    # "person": sent by a person from the pages (a case's or a worker's send form, a conversation's reply);
    # source_id is the username and description the person's name, for the reports.
    SOURCES = ["api", "broadcast", "alert", "survey", "keyword", "system", "person"]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=16)
    source_id = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=255, blank=True, default="")
    # ok | error — an event errors when it could not create its messages at all (e.g. unknown recipient)
    status = models.CharField(max_length=16, default="ok")
    error = models.CharField(max_length=40, blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["project", "created_on"]),
            # the reports: a person's, a broadcast's or an alert's events (names, the delivery report)
            models.Index(fields=["project", "source", "source_id"], name="event_source"),
        ]


class Message(models.Model):
    """One outbound or inbound SMS or email. The row is the truth: its status and next due time drive
    every worker; queue jobs carry ids only, so losing the queue loses no message."""

    # In memory only: the gateway said this number opted out (recorded with the batch's results); the
    # time (epoch seconds) reserved for it in its gateway's rate limit.
    _opt_out: bool = False
    _slot: float = 0.0
    _token: str = ""  # the claim token it was claimed with (process() checks it is still held)
    _chain: list[Gateway] | None = None  # its route's gateways in order (pipeline.failover)
    _sender: str = ""  # the pool number it goes out from (gateways.pools)
    _rich: dict[str, Any] | None = None  # a WhatsApp message's template or buttons (casemsg.messaging.whatsapp)

    OUT, IN = "out", "in"
    QUEUED, SENDING, SENT, DELIVERED, FAILED, RECEIVED = "queued", "sending", "sent", "delivered", "failed", "received"
    READ = "read"  # a WhatsApp message the person opened (after delivered)
    STATUSES = [QUEUED, SENDING, SENT, DELIVERED, READ, FAILED, RECEIVED]

    # Kinds that the compliance rules treat specially: an opt-in request may reach a number without
    # consent; STOP/START/HELP answers must reach a number whatever its state.
    NORMAL, OPT_IN_REQUEST, COMPLIANCE = "normal", "opt_in_request", "compliance"
    # Who is waiting: a reply in a conversation the person started (keyword, STOP/START/HELP, consent and
    # survey answers) is claimed before bulk sends (broadcasts, alerts, API calls), so a flood in one
    # project never holds up another's replies (casemsg.messaging.pipeline.claim).
    BULK, REPLY = 0, 1

    # Null only for inbound messages from unknown senders on an installation-wide gateway (and the
    # compliance answers to them): they belong to no project.
    # Foreign keys whose lookups a composite index below already serves get no index of their own: every
    # index costs a write on each status change, and a message changes status at least twice.
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # indexed with created_on below: an event's messages, and those of some days (a delivery report's)
    event = models.ForeignKey(
        MessagingEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    direction = models.CharField(max_length=3, default=OUT)
    channel = models.CharField(max_length=8, default="sms")  # sms | email | whatsapp
    kind = models.CharField(max_length=16, default=NORMAL)
    priority = models.PositiveSmallIntegerField(default=BULK)
    requires_two_way = models.BooleanField(default=False)
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    worker = models.ForeignKey(MobileWorker, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    to = models.CharField(max_length=254, blank=True, default="")  # number or address used (sender, inbound)
    # What to say: {"text": …} and/or {"translations": {"en": …}}; rendered at send time.
    content = models.JSONField(default=dict)
    default_language = models.CharField(max_length=16, blank=True, default="")
    language = models.CharField(max_length=16, blank=True, default="")
    subject = models.CharField(max_length=255, blank=True, default="")
    html = models.TextField(blank=True, default="")
    text = models.TextField(blank=True, default="")  # as rendered (outbound) or received (inbound)
    segments = models.PositiveIntegerField(default=0)
    gateway = models.ForeignKey(
        Gateway, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_index=False
    )
    gateway_name = models.CharField(max_length=64, blank=True, default="")
    provider_id = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=10, default=QUEUED)
    error = models.CharField(max_length=40, blank=True, default="")
    error_detail = models.TextField(blank=True, default="")
    delay_reason = models.CharField(max_length=40, blank=True, default="")  # RATE_LIMITED, QUIET_HOURS, …
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_on = models.DateTimeField(null=True, blank=True)
    claimed_on = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True, default="")
    # When the latest attempt was handed to the gateway: a row still `sending` with wire_on after its
    # claim was on the wire when its worker died (its outcome is unknown).
    wire_on = models.DateTimeField(null=True, blank=True)
    # A scheduled message's occurrence ("si:<instance id>:<event index>"): unique, so no tick, worker or
    # crash ever sends one occurrence twice. Empty for every other message.
    send_key = models.CharField(max_length=64, blank=True, default="")
    # What happened to the message beyond its status, oldest first: [{"at", "code", …}], e.g. a re-send
    # after an unknown outcome (SENDING_OUTCOME_UNKNOWN).
    history = models.JSONField(default=list, blank=True)
    # Inbound: what the provider's webhook sent ({"content_type", "query", "body" or "body_base64"}), kept
    # even when casemsg could not use it (gateways.cleaning.raw_payload). Null for outbound messages.
    raw = models.JSONField(null=True, blank=True)
    # Made by the phone simulator (the sandbox), or a reply to such a message: never a real person's. A
    # simulated message speaks only for the project that simulated it (docs/security.md).
    simulated = models.BooleanField(default=False)
    created_on = models.DateTimeField()
    sent_on = models.DateTimeField(null=True, blank=True)
    delivered_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["send_key"], condition=~Q(send_key=""), name="message_send_key"),
            # a provider retrying its webhook must not create the message twice
            models.UniqueConstraint(
                fields=["gateway", "provider_id"],
                condition=Q(direction="in") & ~Q(provider_id=""),
                name="message_inbound_dedup",
            ),
        ]
        indexes = [
            # the due-time claim: only queued rows are in this index, so it stays small
            models.Index(fields=["next_attempt_on"], condition=Q(status="queued"), name="message_due"),
            # queued replies: a tiny index (a reply is queued for a moment), read before the bulk queue
            models.Index(
                fields=["next_attempt_on"], condition=Q(status="queued", priority__gt=0), name="message_due_reply"
            ),
            models.Index(fields=["claimed_on"], condition=Q(status="sending"), name="message_sending"),
            # inbound rows waiting for their job (and the sweep that catches lost jobs)
            models.Index(
                fields=["next_attempt_on"],
                condition=Q(direction="in", next_attempt_on__isnull=False),
                name="message_inbound_due",
            ),
            # the inbound claim: each project's waiting rows in arrival order (round-robin across projects),
            # and each number's older waiting or in-flight rows (per-number order)
            models.Index(
                fields=["project", "id"],
                condition=Q(direction="in", next_attempt_on__isnull=False),
                name="message_inbound_waiting",
            ),
            models.Index(fields=["to", "id"], condition=Q(direction="in"), name="message_inbound_number"),
            models.Index(fields=["claim"], condition=~Q(claim=""), name="message_claim"),
            models.Index(fields=["project", "created_on"]),
            models.Index(fields=["project", "status", "created_on"]),
            models.Index(fields=["gateway", "provider_id"]),
            models.Index(fields=["to", "sent_on"]),
            models.Index(fields=["case", "created_on"]),
            models.Index(fields=["event", "created_on"], name="message_event_created"),
            # the conversations: each contact's latest inbound message (casemsg.inbound.conversations)
            models.Index(
                fields=["project", "case", "worker", "id"], condition=Q(direction="in"), name="message_inbound_contact"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.channel} {self.to} {self.status}"

    @property
    def recipient_label(self) -> str:
        if self.case is not None:
            return f"case {self.case.case_id}"
        if self.worker is not None:
            return f"mobile worker {self.worker.username}"
        return self.to


class GatewayPace(models.Model):
    """The rate limit's shared clock per gateway: the time (epoch seconds) of the next free send slot.

    Every worker reserves slots here in one short locked transaction per batch, so the limit holds
    across any number of workers and machines, counted in segments."""

    gateway = models.OneToOneField(Gateway, on_delete=models.CASCADE, primary_key=True, related_name="pace")
    next_slot = models.FloatField(default=0.0)


class IdempotencyKey(models.Model):
    """`Idempotency-Key` of a `POST …/messages`: the same key within a day answers with the same message
    instead of sending a second one (a client retrying after a timeout)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)  # the same key with another body is refused
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_on = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="idempotency_key_unique")]


class CountedDay(models.Model):
    """One day of a project's messages (a calendar day in the project's time zone) counted into
    MessageCount, for the reports (casemsg.messaging.reports). Its bounds are kept in UTC, so a database
    trigger on the message table (migration 0008) marks it `stale` when a message inside it is created,
    changed (status, error, …) or deleted after it was counted: the reports then count that day from the
    messages again until the next roll-up recounts it. A day is counted only once it ended
    `reports.SETTLE` ago, and the trigger looks only at messages older than half that, so the messages
    the send path is busy with never fire it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    zone = models.CharField(max_length=64)  # the project's zone when counted: another zone, other days
    start_utc = models.DateTimeField()
    end_utc = models.DateTimeField()
    counted_on = models.DateTimeField()
    stale = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="counted_day_unique")]
        # the trigger's lookup: the counted day (if any) a message's created_on falls in
        indexes = [models.Index(fields=["project", "end_utc"], name="counted_day_end")]


class MessageCount(models.Model):
    """How many of a project's messages of one counted day had one source, direction, channel, status and
    error: the reports' roll-up (casemsg.messaging.reports), written only by its roll-up."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    # the event's source (MessagingEvent.SOURCES, "person"), "inbound" for a received message, "" for none
    source = models.CharField(max_length=16)
    # who or what within the source: a person's username, a broadcast's or an alert's id; "" otherwise
    ref = models.CharField(max_length=64, blank=True, default="")
    direction = models.CharField(max_length=3)
    channel = models.CharField(max_length=8)
    status = models.CharField(max_length=10)
    error = models.CharField(max_length=40, blank=True, default="")
    n = models.PositiveIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["project", "day"], name="message_count_day"),
            # one broadcast's or alert's delivery report
            models.Index(fields=["project", "source", "ref", "day"], name="message_count_source"),
        ]
