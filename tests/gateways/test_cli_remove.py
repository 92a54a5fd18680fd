"""`casemsg gateway remove` and `casemsg gateway unmap`: a gateway still routed or with messages waiting on
it is refused with the reason; `--force` takes it out of its routes first (each goes on through its next
gateway) and its waiting messages are routed again; every change of the installation's is in its audit log."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from casemsg.gateways import queries
from casemsg.gateways.models import Gateway, InstallationAuditEntry
from casemsg.messaging.models import Message
from casemsg.messaging.pipeline import MessageSpec, deliver_due, queue

pytestmark = pytest.mark.django_db


def gateway(*args: str) -> str:
    out = StringIO()
    call_command("gateway", *args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as e:
        call_command("gateway", *args, stdout=StringIO())
    return str(e.value)


def routes() -> dict[str, list[str]]:
    rows = list(queries.routes(None))
    return {r.prefix: queries.route_chain(r) for r in rows}


def test_remove_refuses_a_routed_gateway_and_unmap_then_remove_works() -> None:
    gateway("add", "main", "--type", "sandbox")
    gateway("add", "backup", "--type", "sandbox")
    gateway("map", "*", "main")
    gateway("map", "1", "backup", "--then", "main")

    message = refused("remove", "backup")
    assert message.startswith("GATEWAY_IN_USE:")
    assert "route 1 (backup → main)" in message and "--force" in message
    assert Gateway.objects.filter(name="backup").exists()

    out = gateway("unmap", "1", "backup")
    assert "Gateway backup taken out of route 1: now main (installation)." in out
    assert routes() == {"*": ["main"], "1": ["main"]}
    assert gateway("remove", "backup").strip() == "Gateway backup removed."
    assert not Gateway.objects.filter(name="backup").exists()

    # a route without a gateway named: the whole route goes
    assert gateway("unmap", "+1").strip() == "Route 1 removed (installation)."
    assert routes() == {"*": ["main"]}
    # nothing to unmap: clear words, no traceback
    assert "There is no route 44 (installation)" in refused("unmap", "44")
    assert refused("unmap", "*", "nope").startswith("ROUTE_NOT_FOUND: Route * does not list gateway 'nope' (main)")
    assert refused("remove", "nope") == "GATEWAY_NOT_FOUND: No gateway named 'nope'."

    # the installation's audit log has each change, as the command line
    log = list(InstallationAuditEntry.objects.order_by("id").values_list("subject", "action", "source"))
    assert ("route 1", "changed", "cli") in log and ("gateway backup", "removed", "cli") in log
    assert log[-1] == ("route 1", "removed", "cli")


def test_unmapping_the_only_gateway_removes_the_route() -> None:
    gateway("add", "only", "--type", "sandbox")
    gateway("map", "254", "only")
    assert "Route 254 removed: only was its only gateway (installation)." in gateway("unmap", "254", "only")
    assert routes() == {}


def test_force_takes_it_out_of_its_routes_and_its_waiting_messages_go_elsewhere(project) -> None:
    gateway("add", "main", "--type", "sandbox")
    gateway("add", "backup", "--type", "sandbox")
    gateway("map", "*", "main", "--then", "backup")
    gateway("map", "44", "main")
    # a project's own route through the installation gateway counts too
    gateway("map", "1", "main", "--project", project.slug)
    main = Gateway.objects.get(name="main")
    (waiting,) = queue(project, [MessageSpec(to="254712000001", text="waiting", gateway=main)], None)
    assert waiting.status == Message.QUEUED

    message = refused("remove", "main")
    assert "route * (main → backup)" in message and "route 44 (main)" in message
    assert f"project {project.slug}'s route 1 (main)" in message
    assert "1 message waiting to be sent" in message

    out = gateway("remove", "main", "--force")
    assert "taken out of the installation's route * (main → backup)" in out
    assert out.strip().endswith("Gateway main removed.")
    assert routes() == {"*": ["backup"]}  # 44 had no other gateway: removed
    assert list(queries.routes(project)) == []

    # the waiting message is routed again, through the route's next gateway
    deliver_due(max_batches=1)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.gateway_name) == (Message.SENT, "backup")


def test_a_projects_own_gateway_with_project(project) -> None:
    gateway("add", "own", "--type", "sandbox", "--project", project.slug)
    gateway("add", "own", "--type", "sandbox")  # the installation's of the same name is another gateway
    gateway("map", "254", "own", "--project", project.slug)
    assert f"project {project.slug}'s route 254 (own)" in refused("remove", "own", "--project", project.slug)
    out = gateway("unmap", "254", "--project", project.slug)
    assert out.strip() == f"Route 254 removed (project {project.slug})."
    assert gateway("remove", "own", "--project", project.slug).strip() == "Gateway own removed."
    assert list(Gateway.objects.values_list("name", "project_id")) == [("own", None)]
    # a project's changes are not in the installation's audit log
    assert [s for s, _a, _src in InstallationAuditEntry.objects.values_list("subject", "action", "source")] == [
        "gateway own"
    ]
