"""Settings → Texts and the Translations file, through Django's test client: a Swahili contact's STOP answered
in Swahili once an officer wrote the text on the page; who may change what (an editor writes, an owner may
weaken, a viewer reads); refusals shown on the box they are about in the API's words; the translations
download, the upload's preview with row-numbered problems, and applying it. And the Keywords page listing
the surveys' keywords too."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model

from casemsg.consent import texts
from casemsg.projects import services as projects
from casemsg.projects.models import AuditEntry
from casemsg.web.forms_texts import field_name
from tests.inbound.conftest import KE, KE2, sent_to, sms_in
from tests.web.clients import logged_in

pytestmark = pytest.mark.django_db

UMEJIONDOA = "Umejiondoa. Hutapokea ujumbe tena. Tuma START kujiunga tena."
XSS = "<script>alert(1)</script> STOP"


def member(project, role: str):
    user = get_user_model().objects.create_user(role, password=f"pw-{role}-1")
    projects.add_member(project, user, role)
    return logged_in(user)


def page_values(project) -> dict[str, str]:
    """What the form posts when nothing is touched: each box with the project's own text."""
    own = texts.own(project)
    return {
        field_name(t.key, lang): own.get(t.key, {}).get(lang, "")
        for t in texts.catalogue()
        for lang in texts.languages(project)
    }


def test_a_swahili_contacts_stop_gets_the_text_written_on_the_page(api, project, sandbox) -> None:
    editor = member(project, "editor")
    page = editor.get(f"/projects/{project.slug}/settings/texts/").content.decode()
    assert 'id="text-opt_out_confirmation"' in page and "STOP confirmation" in page
    # the empty box shows the fallback that applies
    assert f'placeholder="{texts.get("opt_out_confirmation").default}"' in page
    api.case({"contact_phone_number": KE, "contact_phone_number_is_verified": "1", "language_code": "sw"})
    api.case({"contact_phone_number": KE2, "contact_phone_number_is_verified": "1", "language_code": "en"})

    body = {**page_values(project), field_name("opt_out_confirmation", "sw"): UMEJIONDOA}
    r = editor.post(f"/projects/{project.slug}/settings/texts/", body)
    assert r.status_code == 302, r.content.decode()[:2000]
    sms_in(api, KE, "STOP")
    sms_in(api, KE2, "STOP")
    assert sent_to(KE) == [UMEJIONDOA]
    assert sent_to(KE2) == [texts.get("opt_out_confirmation").default]
    entry = AuditEntry.objects.get(setting="texts.opt_out_confirmation")
    assert (entry.source, entry.who, entry.after) == ("page", "user editor", {"sw": UMEJIONDOA})
    # the page shows it back, escaped like any user text
    assert UMEJIONDOA in editor.get(f"/projects/{project.slug}/settings/texts/").content.decode()


def test_who_may_change_what(project) -> None:
    url = f"/projects/{project.slug}/settings/texts/"
    weak = {**page_values(project), field_name("help_text", "sw"): "Msaada: piga simu 0800."}
    editor, owner, viewer = member(project, "editor"), member(project, "owner"), member(project, "viewer")
    r = editor.post(url, weak)
    assert r.status_code == 200
    errors = r.context["form"].errors
    assert errors[field_name("help_text", "sw")][0].startswith("texts.help_text.sw: no longer names an opt-out word")
    assert texts.own(project) == {}
    assert owner.post(url, weak).status_code == 302
    assert AuditEntry.objects.get(setting="texts.help_text").weakens is True
    page = viewer.get(url).content.decode()
    assert "<fieldset disabled" in page and 'id="save"' not in page
    assert viewer.post(url, page_values(project)).status_code == 403


def test_refusals_on_their_box_and_user_text_escaped(project) -> None:
    owner = member(project, "owner")
    url = f"/projects/{project.slug}/settings/texts/"
    r = owner.post(url, {**page_values(project), field_name("verification_code", "sw"): "Nambari {kodi}"})
    assert r.status_code == 200
    assert "is not a placeholder of this text" in r.context["form"].errors[field_name("verification_code", "sw")][0]
    assert owner.post(url, {**page_values(project), field_name("help_text", "en"): XSS}).status_code == 302
    page = owner.get(url).content.decode()
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt; STOP" in page
    # an emptied box goes back to the fallback (the law's texts are never empty)
    assert owner.post(url, {**page_values(project), field_name("help_text", "en"): ""}).status_code == 302
    assert texts.own(project) == {}


def test_the_translations_file_on_the_page(api, project) -> None:
    editor = member(project, "editor")
    api.post("keywords", {"keyword": "clinic", "reply": {"en": "Open 8-5"}})
    page = editor.get(f"/projects/{project.slug}/settings/translations/").content.decode()
    assert 'id="download-csv"' in page and 'id="translations-upload"' in page
    csv_text = b"".join(editor.get(f"/projects/{project.slug}/settings/translations.csv").streaming_content).decode()
    lines = csv_text.splitlines()
    assert lines[0] == "type,id,name,field,source,en,sw"
    xlsx = editor.get(f"/projects/{project.slug}/settings/translations.xlsx")
    assert xlsx.content[:2] == b"PK"

    filled = [line + "Wazi 8-5" if line.startswith("keyword,") else line for line in lines]
    filled.append("keyword,777,,reply,,,x")
    f = io.BytesIO("\n".join(filled).encode())
    f.name = "t.csv"
    r = editor.post(f"/projects/{project.slug}/settings/translations/", {"file": f})
    html = r.content.decode()
    assert r.status_code == 200 and 'id="translation-problems"' in html
    assert f"Row {len(filled)}: the project has no keyword &#x27;777&#x27;" in html
    assert 'id="translations-apply"' not in html  # nothing to apply while a problem is left

    f = io.BytesIO("\n".join(filled[:-1]).encode())
    f.name = "t.csv"
    r = editor.post(f"/projects/{project.slug}/settings/translations/", {"file": f})
    html = r.content.decode()
    assert "Wazi 8-5" in html and 'id="translations-apply"' in html
    assert api.get("keywords").json()["items"][0]["reply"] == {"en": "Open 8-5"}  # a preview only
    r = editor.post(f"/projects/{project.slug}/settings/translations/", {"apply": r.context["token"]})
    assert r.status_code == 302
    assert api.get("keywords").json()["items"][0]["reply"] == {"en": "Open 8-5", "sw": "Wazi 8-5"}
    # the waiting file is gone: applying again says so
    r = editor.post(f"/projects/{project.slug}/settings/translations/", {"apply": "whatever"}, follow=True)
    assert "no longer waiting" in r.content.decode()
    viewer = member(project, "viewer")
    assert viewer.get(f"/projects/{project.slug}/settings/translations/").status_code == 200
    assert viewer.post(f"/projects/{project.slug}/settings/translations/", {"apply": "x"}).status_code == 403


def test_the_keywords_page_lists_survey_keywords(api, project) -> None:
    survey = {
        "format": "casemsg-survey/1",
        "name": "Antenatal visit",
        "default_language": "en",
        "languages": ["en"],
        "settings": {"keyword": "ANC"},
        "questions": [{"name": "q", "type": "text", "label": {"en": "Q?"}}],
    }
    sid = api.post("surveys", survey).json()["id"]
    viewer = member(project, "viewer")
    page = viewer.get(f"/projects/{project.slug}/keywords/").content.decode()
    assert "No keywords yet" not in page
    assert 'data-survey-keyword="ANC"' in page
    assert f'href="/projects/{project.slug}/surveys/{sid}/"' in page and "Survey: Antenatal visit" in page
    # a project keyword of the same word comes first, and the page says so
    api.post("keywords", {"keyword": "anc", "reply": {"en": "Clinic hours 8-5"}})
    page = viewer.get(f"/projects/{project.slug}/keywords/").content.decode()
    assert 'data-keyword="ANC"' in page and "comes first: this one never starts the survey" in page
