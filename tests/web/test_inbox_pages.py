"""The inbox, conversations and thread pages (Django's test client): what they list, the live updates' answers (204
while nothing changed), state and label changes, the reply box through the pipeline (a person named as the source;
a failed reply says why), the roles (a viewer reads, never changes); the message log's source column."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth import get_user_model

from casemsg.inbound import inbox
from casemsg.inbound.models import InboxItem
from casemsg.messaging.models import Message
from casemsg.projects.services import add_member
from tests.inbound.conftest import KE, KE2, US, sms_in, work
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db
TWO_WAY = {"contact_phone_number_is_verified": "1"}


@pytest.fixture
def olga(project):
    user = get_user_model().objects.create_user("olga", password="pw-olga-1", first_name="Olga", last_name="Nurse")
    add_member(project, user, "editor")
    return logged_in(user)


def poll_url(html: str, part: str) -> str:
    m = re.search(r'hx-get="([^"]*part=' + part + r'[^"]*)"', html)
    assert m, html
    return m.group(1).replace("&amp;", "&")


def test_the_inbox_lists_what_nothing_handled_and_updates_itself(api, project, sandbox, olga):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    sms_in(api, KE, "Is the clinic open on Sunday?")
    r = olga.get(f"/projects/{project.slug}/inbox/")
    html = r.content.decode()
    assert r.status_code == 200 and "Is the clinic open on Sunday?" in html
    assert f'href="/projects/{project.slug}/conversations/amina/"' in html
    poll = poll_url(html, "list")
    assert olga.get(poll).status_code == 204  # nothing changed
    api.case({"contact_phone_number": KE2, **TWO_WAY}, case_id="ben", name="Ben")
    sms_in(api, KE2, "My card is lost")
    r = olga.get(poll)
    assert r.status_code == 200 and "My card is lost" in r.content.decode()
    assert "<html" not in r.content.decode()  # only the list
    assert olga.get(poll_url(r.content.decode(), "list")).status_code == 204

    item = inbox.items(project, inbox.InboxFilter(search="card")).get()
    here = f"/projects/{project.slug}/inbox/?q=card"
    r = olga.post(f"/projects/{project.slug}/inbox/{item.message_id}/", {"action": "handled", "next": here})
    assert r.status_code == 302 and r["Location"] == here
    item.refresh_from_db()
    assert item.state == InboxItem.HANDLED and item.changed_by == "user olga"
    olga.post(f"/projects/{project.slug}/inbox/{item.message_id}/", {"action": "add_label", "label": "Card"})
    r = olga.get(f"/projects/{project.slug}/inbox/?state=handled&label=Card")
    assert "My card is lost" in r.content.decode()
    r = olga.get(f"/projects/{project.slug}/inbox/?state=open")
    assert "My card is lost" not in r.content.decode() and "Sunday" in r.content.decode()
    olga.post(f"/projects/{project.slug}/inbox/labels/", {"name": "Urgent"})
    olga.post(f"/projects/{project.slug}/inbox/labels/", {"action": "delete", "name": "Card"})
    assert [lb.name for lb in inbox.labels(project)] == ["Urgent"]
    # a bad state or a message that is not in the inbox changes nothing and says so
    r = olga.post(f"/projects/{project.slug}/inbox/999999/", {"action": "archived"}, follow=True)
    assert "MESSAGE_NOT_FOUND" in r.content.decode()


def test_a_viewer_reads_the_inbox_and_threads_but_changes_nothing(api, project, sandbox, viewer):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    sms_in(api, KE, "hello")
    item = InboxItem.objects.get()
    r = viewer.get(f"/projects/{project.slug}/inbox/")
    assert r.status_code == 200 and "hello" in r.content.decode() and 'name="action"' not in r.content.decode()
    r = viewer.get(f"/projects/{project.slug}/conversations/amina/")
    assert r.status_code == 200 and "reply-form" not in r.content.decode()
    assert viewer.post(f"/projects/{project.slug}/inbox/{item.message_id}/", {"action": "archived"}).status_code == 403
    assert viewer.post(f"/projects/{project.slug}/conversations/amina/", {"text": "hi"}).status_code == 403
    assert viewer.post(f"/projects/{project.slug}/inbox/labels/", {"name": "x"}).status_code == 403


def test_the_thread_and_its_reply_box(api, project, sandbox, olga):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    sms_in(api, KE, "Can I come on Monday?")
    r = olga.get(f"/projects/{project.slug}/conversations/")
    assert r.status_code == 200 and "Can I come on Monday?" in r.content.decode() and "1 open" in r.content.decode()
    url = f"/projects/{project.slug}/conversations/amina/"
    r = olga.get(url)
    html = r.content.decode()
    assert r.status_code == 200 and "Can I come on Monday?" in html and 'id="reply-form"' in html
    poll = poll_url(html, "thread")
    assert olga.get(poll).status_code == 204
    r = olga.post(url, {"text": "Yes, Monday at 9."})
    assert r.status_code == 302 and r["Location"] == url
    work()
    reply = Message.objects.get(direction=Message.OUT, to=KE)
    assert reply.text == "Yes, Monday at 9." and reply.status in (Message.SENT, Message.DELIVERED)
    assert (reply.event.source, reply.event.source_id, reply.event.description) == ("person", "olga", "Olga Nurse")
    r = olga.get(poll)
    assert r.status_code == 200 and "Yes, Monday at 9." in r.content.decode()
    assert InboxItem.objects.get().state == InboxItem.HANDLED  # answered from the thread

    # a reply that cannot go (no consent) is in the thread with its reason, and the page says so
    api.case({"contact_phone_number": US}, case_id="maria", name="Maria")
    r = olga.post(f"/projects/{project.slug}/conversations/maria/", {"text": "Hello"}, follow=True)
    assert "NO_CONSENT" in r.content.decode()
    assert olga.get(f"/projects/{project.slug}/conversations/nobody/").status_code == 404
    r = olga.post(url, {"text": ""})
    assert r.status_code == 200 and "This field is required" in r.content.decode()


def test_the_message_log_names_each_messages_source(api, project, sandbox, olga):
    api.case({"contact_phone_number": KE, **TWO_WAY}, case_id="amina", name="Amina")
    sms_in(api, KE, "=HYPERLINK(1)")
    olga.post(f"/projects/{project.slug}/conversations/amina/", {"text": "Noted"})
    api.post("messages", {"recipient": {"case_id": "amina"}, "text": "From the API"})
    work()
    r = olga.get(f"/projects/{project.slug}/messages/")
    html = r.content.decode()
    assert "<th" in html and "Source" in html and "Olga Nurse" in html
    r = olga.get(f"/projects/{project.slug}/messages.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    got = {(row["text"], row["source"], row["source_name"]) for row in rows}
    assert ("Noted", "person", "Olga Nurse") in got and ("From the API", "api", "") in got
    assert ("'=HYPERLINK(1)", "inbound", "") in got
