from __future__ import annotations

from django.db import models

from casemsg.gateways.models import Gateway, GatewayRoute


class RouteGateway(models.Model):
    """A route's further gateways, in order, after its own (`GatewayRoute.gateway` is the first): a message
    its gateway certainly did not take moves to the next one (casemsg.gateways.failover)."""

    route = models.ForeignKey(GatewayRoute, on_delete=models.CASCADE, related_name="then")
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()  # 1 is the second gateway of the route

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["route", "position"], name="route_gateway_position"),
            models.UniqueConstraint(fields=["route", "gateway"], name="route_gateway_once"),
        ]


class Circuit(models.Model):
    """A gateway's circuit: consecutive sends it certainly did not take (not bound, bind refused, auth);
    `open_until` in the future moves its messages to the route's next gateway; once it passes, one message
    probes the gateway and a success closes the circuit. `disabled` keeps it open until enabled."""

    gateway = models.OneToOneField(Gateway, on_delete=models.CASCADE, primary_key=True, related_name="circuit")
    failures = models.PositiveIntegerField(default=0)
    open_until = models.DateTimeField(null=True, blank=True)
    disabled = models.BooleanField(default=False)
    last_error = models.CharField(max_length=300, blank=True, default="")
    changed_on = models.DateTimeField(auto_now=True)


class PoolNumber(models.Model):
    """One sender number (or alphanumeric sender ID) of a gateway's pool, with its own rate limit."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="pool_numbers")
    number = models.CharField(max_length=32)  # E.164 digits, or a sender ID
    rate_limit = models.PositiveIntegerField(default=0)  # segments per second from this number; 0: no limit
    next_slot = models.FloatField(default=0.0)  # the number's pacing, shared by every worker (epoch seconds)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "number"], name="pool_number_unique")]

    def __str__(self) -> str:
        return self.number


class StickySender(models.Model):
    """The pool number a recipient hears from, stored (not hashed): adding a number moves nobody; a person
    who writes to another number of the pool is answered from that one."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="+")
    recipient = models.CharField(max_length=32)  # E.164 digits
    number = models.ForeignKey(PoolNumber, on_delete=models.CASCADE, related_name="recipients")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["gateway", "recipient"], name="sticky_sender_unique")]


class SubmitAck(models.Model):
    """A submit_sm the SMSC acknowledged (submit_sm_resp ESME_ROK), stored as the responses arrive, a part of
    a message per row (casemsg.gateways.smpp_journal). What makes duplicates per submit rather than per
    window: after a worker dies mid-send, a message every part of which is here was taken by the SMSC (it is
    sent, with this id, not sent again); a part that is here is never submitted again. Kept a day."""

    message_id = models.BigIntegerField()  # the Message's pk (gateways sits below messaging: no foreign key)
    part = models.PositiveSmallIntegerField()  # 1-based
    parts = models.PositiveSmallIntegerField()
    provider_id = models.CharField(max_length=65)  # the SMSC's message_id (C-Octet String of up to 65)
    acked_on = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message_id", "part"], name="submit_ack_part_once")]


class SmppHandoff(models.Model):
    """A message a worker hands to the `casemsg smpp` process that holds a `bind_per: process` gateway's only
    bind (casemsg.gateways.smpp_handoff): pending until that process takes it, then its outcome."""

    PENDING, TAKEN, DONE = 0, 1, 2
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="+")
    message_id = models.BigIntegerField()
    to = models.CharField(max_length=32)
    text = models.TextField()
    sender = models.CharField(max_length=32, blank=True, default="")
    segments = models.PositiveSmallIntegerField(default=1)
    state = models.PositiveSmallIntegerField(default=PENDING)
    taken_by = models.CharField(max_length=64, blank=True, default="")
    result = models.JSONField(null=True, blank=True)  # the SendResult's fields once DONE
    created_on = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["gateway", "state"], name="smpp_handoff_due")]
