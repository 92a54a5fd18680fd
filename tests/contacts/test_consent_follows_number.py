"""Consent belongs to the number, not to the case (docs/security.md, "Consent"): a case whose number changes
starts with what the new number has earned — nothing — by every write path (API, bulk API, CSV import,
the case page); a change that sets `contact_phone_number_is_verified` again for the new number is consent
for that number, with a ledger row naming who recorded it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from casemsg.cases.models import Case
from casemsg.consent.models import ConsentRecord
from casemsg.gateways.services import add_gateway, map_prefix
from tests.inbound.conftest import US, US2, outbox, send, work
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db

VERIFIED = "contact_phone_number_is_verified"


@pytest.fixture
def consented(api) -> str:
    """A case with a US number and recorded consent (the API set the property: a ledger row, source api),
    sent to through the installation's sandbox."""
    add_gateway("sandbox", "sandbox")
    map_prefix("*", "sandbox")
    cid = api.case({"contact_phone_number": US, VERIFIED: "1"}, name="Maria")["case_id"]
    assert api.contact(cid)["sms"]["ok"]
    assert list(ConsentRecord.objects.filter(phone_number=US).values_list("kind", "source")) == [("consent", "api")]
    return cid


def patch(api, cid: str, props: dict) -> None:
    r = api.patch(f"cases/{cid}", {"properties": props})
    assert r.status_code == 200, r.content


def bulk(api, cid: str, props: dict) -> None:
    r = api.post("cases/bulk", {"cases": [{"case_id": cid, "properties": props}]})
    assert r.status_code == 200, r.content


def csv_import(api, cid: str, props: dict, tmp_path: Path) -> None:
    header = ["case_id", *props]
    f = tmp_path / "cases.csv"
    f.write_text(",".join(header) + "\n" + ",".join([cid, *props.values()]) + "\n", encoding="utf-8")
    out = io.StringIO()
    call_command("cases", "import", str(f), "--project", api.slug, "--case-type", "patient", stdout=out, stderr=out)


def page(api, cid: str, props: dict) -> None:
    """The case page's properties form, as an owner fills it in (unchanged fields are sent unchanged)."""
    from django.contrib.auth import get_user_model

    client = logged_in(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-boss-1"))
    case = Case.objects.get(project__slug=api.slug, case_id=cid)
    current = {**case.properties, **props}
    keys = sorted(case.properties)
    data = {"action": "properties", "name": case.name, "key": keys, "value": [current[k] for k in keys]}
    new = [k for k in props if k not in case.properties]
    if new:
        data |= {"new_key": new[0], "new_value": props[new[0]]}
    r = client.post(reverse("web:case", args=[api.slug, cid]), data)
    assert r.status_code == 302, r.content.decode()[:2000]


PATHS = {"api": patch, "bulk": bulk, "import": csv_import, "page": page}


@pytest.mark.parametrize("path", PATHS)
def test_a_new_number_starts_without_the_old_numbers_consent(path, api, consented, tmp_path):
    write = PATHS[path]
    args = (tmp_path,) if path == "import" else ()
    write(api, consented, {"contact_phone_number": US2}, *args)
    case = Case.objects.get(case_id=consented)
    assert case.properties["contact_phone_number"] == US2
    assert VERIFIED not in case.properties
    assert api.contact(consented)["sms"]["error"]["code"] == "NO_CONSENT"
    assert send(api, consented)["error"]["code"] == "NO_CONSENT"
    work()
    assert outbox(api) == []
    assert not ConsentRecord.objects.filter(phone_number=US2).exists()


@pytest.mark.parametrize("path", ["api", "bulk", "import"])
def test_consent_set_again_with_the_new_number_is_recorded_for_it(path, api, consented, tmp_path):
    write = PATHS[path]
    args = (tmp_path,) if path == "import" else ()
    write(api, consented, {"contact_phone_number": US2, VERIFIED: "1"}, *args)
    assert api.contact(consented)["sms"]["ok"]
    source = {"api": "api", "bulk": "api", "import": "import"}[path]
    assert list(ConsentRecord.objects.filter(phone_number=US2).values_list("kind", "source")) == [("consent", source)]


def test_the_same_number_written_another_way_keeps_its_consent(api, consented):
    patch(api, consented, {"contact_phone_number": "+" + US})
    assert api.contact(consented)["sms"]["ok"]
    assert Case.objects.get(case_id=consented).properties[VERIFIED] == "1"
    patch(api, consented, {"name": "Maria J"})  # another property: nothing to do with the number
    assert api.contact(consented)["sms"]["ok"]
