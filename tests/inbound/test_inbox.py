"""The inbox and the conversations: every inbound message nothing handled waits in the inbox (handled one at a
time or in a batch, with the project's catch-all reply or without), nothing else does; its state and labels
change; a conversation is every message of a contact, and a reply from it goes through the send pipeline's
rules — consent and opt-out apply, quiet hours do not — and marks the contact's open items handled."""

from __future__ import annotations

from datetime import time

import pytest
from django.utils import timezone

from casemsg.consent import texts
from casemsg.core import actor, errors
from casemsg.core.errors import InputError
from casemsg.inbound import conversations, inbox
from casemsg.inbound.models import InboxItem
from casemsg.messaging.models import Message
from casemsg.projects.models import Project
from tests.inbound.conftest import KE, KE2, US, gateway_in, gateway_post, send, sms_in, work

pytestmark = pytest.mark.django_db
TWO_WAY = {"contact_phone_number_is_verified": "1"}  # the number is the case's for two-way SMS


def keyword(api, word: str, reply: str) -> None:
    r = api.post("keywords", {"keyword": word, "reply": {"en": reply}})
    assert r.status_code == 201, r.content


def open_texts(project: Project) -> list[str]:
    return [i.message.text for i in inbox.items(project, inbox.InboxFilter())]


def test_only_what_nothing_handled_waits_in_the_inbox(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    keyword(api, "CLINIC", "Open 8-17")
    sms_in(api, KE, "CLINIC hours?")  # a keyword took it
    sms_in(api, KE, "HELP")  # the help word
    sms_in(api, KE, "My baby has a fever, what do I do?")  # nothing
    assert open_texts(project) == ["My baby has a fever, what do I do?"]
    item = inbox.items(project, inbox.InboxFilter()).get()
    assert item.message.case.case_id == "amina"
    assert item.message.error_detail == "No keyword matched."
    assert item.state == InboxItem.OPEN


def test_a_batch_and_an_unknown_sender_on_the_projects_gateway(api, project, alpha_sandbox):
    """Messages handled together (the batch's collected writes) reach the inbox too, and an unknown sender's,
    answered with the project's unknown-sender reply, waits for a person as well."""
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    texts.update(project, {"unknown_sender_reply": {"en": "This number is not registered."}})
    gateway_post(alpha_sandbox, KE, "first question")
    gateway_post(alpha_sandbox, KE2, "who is this?")
    work()
    assert sorted(open_texts(project)) == ["first question", "who is this?"]
    unknown = inbox.items(project, inbox.InboxFilter(search="who is")).get()
    assert unknown.message.case is None and inbox.outcome(unknown.message) == "unknown_sender"


def test_the_catch_all_reply_answers_and_the_message_still_waits(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    sms_in(api, KE, "hello?")
    assert Message.objects.filter(direction=Message.OUT, to=KE).count() == 0  # off by default
    texts.update(project, {"catch_all_reply": {"en": "Thank you, a nurse will answer soon."}})
    sms_in(api, KE, "hello again?")
    out = list(Message.objects.filter(direction=Message.OUT, to=KE).values_list("text", "status"))
    assert out == [("Thank you, a nurse will answer soon.", Message.SENT)] or out == [
        ("Thank you, a nurse will answer soon.", Message.DELIVERED)
    ]
    assert sorted(open_texts(project)) == ["hello again?", "hello?"]


def test_states_labels_and_search(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina Wanjiru")
    api.case({"contact_phone_number": KE2, **TWO_WAY}, case_id="ben", name="Ben")
    sms_in(api, KE, "Where is the clinic?")
    sms_in(api, KE2, "I lost my card")
    amina, ben = (inbox.items(project, inbox.InboxFilter(search=s)).get() for s in ("Wanjiru", "card"))
    assert inbox.items(project, inbox.InboxFilter(search="+254 711-000 001")).get() == amina  # number any way
    with actor.acting_as("page", "user olga"):
        assert inbox.set_state(project, [amina.message_id], InboxItem.HANDLED) == 1
    inbox.set_state(project, [ben.message_id], InboxItem.ARCHIVED)
    assert open_texts(project) == []
    assert inbox.state_counts(project) == {"open": 0, "handled": 1, "archived": 1}
    handled = inbox.item_of(project, amina.message_id)
    assert handled.changed_by == "user olga" and handled.changed_on is not None

    inbox.set_labels(project, ben.message_id, ["Lost card", " Lost   card ", "Urgent"])
    assert sorted(lb.name for lb in inbox.item_of(project, ben.message_id).labels.all()) == ["Lost card", "Urgent"]
    inbox.remove_label(project, ben.message_id, "Urgent")
    inbox.add_label(project, amina.message_id, "Urgent")
    found = inbox.items(project, inbox.InboxFilter(state=None, label="Urgent"))
    assert [i.message_id for i in found] == [amina.message_id]
    assert [(lb.name, lb.n) for lb in inbox.labels(project)] == [("Lost card", 0), ("Urgent", 0)]
    inbox.delete_label(project, "Urgent")
    assert [lb.name for lb in inbox.labels(project)] == ["Lost card"]
    with pytest.raises(InputError) as e:
        inbox.delete_label(project, "Urgent")
    assert e.value.status == 404
    with pytest.raises(InputError) as e:
        inbox.set_state(project, [amina.message_id], "done")
    assert e.value.code == errors.VALIDATION_ERROR
    with pytest.raises(InputError) as e:
        inbox.add_label(project, amina.message_id, "x" * 41)
    assert e.value.code == errors.VALIDATION_ERROR


def test_another_projects_inbox_is_out_of_reach(api, project, other_project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina")
    sms_in(api, KE, "hello?")
    item = inbox.items(project, inbox.InboxFilter()).get()
    with pytest.raises(InputError) as e:
        inbox.item_of(other_project, item.message_id)
    assert e.value.code == errors.MESSAGE_NOT_FOUND
    assert inbox.set_state(other_project, [item.message_id], InboxItem.ARCHIVED) == 0


# --- conversations -------------------------------------------------------------------------------------
def test_a_thread_is_every_message_of_the_contact_and_a_reply_goes_through_the_pipeline(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    api.case({"contact_phone_number": KE2, **TWO_WAY}, case_id="ben", name="Ben")
    send(api, "amina", "Your visit is on Friday")
    sms_in(api, KE, "Can I come on Monday instead?")
    sms_in(api, KE2, "Hello from Ben")
    work()
    total, convs = conversations.conversations(project)
    assert total == 2 and [c.contact.key for c in convs] == ["ben", "amina"]
    assert convs[1].last.text == "Can I come on Monday instead?" and convs[1].open_items == 1
    assert conversations.conversations(project, search="amin")[0] == 1

    who = conversations.contact(project, "amina")
    assert [m.text for m in conversations.thread(project, who)] == [
        "Your visit is on Friday",
        "Can I come on Monday instead?",
    ]
    before = conversations.version(conversations.thread(project, who))
    msg = conversations.reply(project, who, "Yes, Monday {at 9}", person=("olga", "Olga Nurse"))
    work()
    msg.refresh_from_db()
    assert msg.status in (Message.SENT, Message.DELIVERED) and msg.text == "Yes, Monday {at 9}"  # as written
    assert msg.priority == Message.REPLY
    assert (msg.event.source, msg.event.source_id, msg.event.description) == ("person", "olga", "Olga Nurse")
    assert conversations.version(conversations.thread(project, who)) != before
    assert inbox.items(project, inbox.InboxFilter(state=InboxItem.HANDLED)).get().message.text.startswith("Can I")


def test_consent_and_opt_out_apply_to_a_reply(api, project, sandbox):
    api.case({"contact_phone_number": US}, case_id="maria")  # a US number without consent
    msg = conversations.reply(project, conversations.contact(project, "maria"), "Hello Maria")
    assert (msg.status, msg.error) == (Message.FAILED, errors.NO_CONSENT)
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina")
    sms_in(api, KE, "STOP")
    msg = conversations.reply(project, conversations.contact(project, "amina"), "Are you sure?")
    assert (msg.status, msg.error) == (Message.FAILED, errors.PHONE_OPTED_OUT)


def test_quiet_hours_never_hold_a_persons_reply(api, project, sandbox):
    now = timezone.now().astimezone(timezone.get_fixed_timezone(0)).time()
    # quiet hours around the present minute, on every clock the contact may have (UTC: no zone given)
    start = time((now.hour - 1) % 24, 0)
    end = time((now.hour + 2) % 24, 0)
    Project.objects.filter(pk=project.pk).update(quiet_hours_start=start, quiet_hours_end=end)
    project.refresh_from_db()
    api.case({"contact_phone_number": KE, "time_zone": "UTC", **TWO_WAY}, case_id="amina")
    msg = conversations.reply(project, conversations.contact(project, "amina"), "Answering now")
    work()
    msg.refresh_from_db()
    assert msg.status in (Message.SENT, Message.DELIVERED) and msg.delay_reason == ""


def test_contact_keys(api, project, sandbox):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="case:odd", name="Odd")
    odd = conversations.contact(project, "case:case:odd")
    assert odd.key == "case:case:odd" and conversations.contact(project, odd.key).case == odd.case
    with pytest.raises(InputError) as e:
        conversations.contact(project, "nobody")
    assert e.value.code == errors.CASE_NOT_FOUND
    with pytest.raises(InputError) as e:
        conversations.contact(project, "mobile-worker:abc")
    assert e.value.code == errors.MOBILE_WORKER_NOT_FOUND
    with pytest.raises(InputError) as e:
        conversations.reply(project, odd, "   ")
    assert e.value.code == errors.MESSAGE_BLANK


def test_unknown_senders_on_the_installation_gateway_belong_to_no_inbox(project, sandbox):
    gateway_in(sandbox, KE, "hi, who is this?")  # no project holds the number: no project's inbox
    assert InboxItem.objects.count() == 0
