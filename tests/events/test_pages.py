"""The event webhook pages: endpoints with their counts, each one's delivery log, text escaped, other
projects' endpoints unreachable."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from casemsg.consent import optout
from casemsg.events import deliver, services
from casemsg.projects import services as projects


def viewer_client(project) -> Client:
    user = get_user_model().objects.create_user("vic", password="pw-vic-1")
    projects.add_member(project, user, "viewer")
    client = Client()
    client.force_login(user)
    return client


def test_pages_list_endpoints_and_deliveries(project, other_project, receiver):
    server = receiver(statuses=[500])
    endpoint = services.create_endpoint(project, server.url, ["optout.changed"], "<b>CRM</b>")
    hidden = services.create_endpoint(other_project, server.url, ["optout.changed"])
    optout.opt_out("254712345678", project=project, source="api")
    deliver.deliver_due()
    client = viewer_client(project)

    page = client.get(f"/projects/{project.slug}/webhooks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert server.url in html and "&lt;b&gt;CRM&lt;/b&gt;" in html and "<b>CRM</b>" not in html
    assert "optout.changed" in html and "HTTP 500: nope try later" in html
    assert 'href="/projects/alpha/webhooks/"' in html  # the nav entry

    detail = client.get(f"/projects/{project.slug}/webhooks/{endpoint.pk}/", {"state": "pending"})
    assert detail.status_code == 200 and "HTTP 500" in detail.content.decode()
    assert (
        "HTTP 500"
        not in client.get(f"/projects/{project.slug}/webhooks/{endpoint.pk}/?state=delivered").content.decode()
    )
    assert client.get(f"/projects/{project.slug}/webhooks/{hidden.pk}/").status_code == 404
    assert client.get(f"/projects/{other_project.slug}/webhooks/").status_code == 404
