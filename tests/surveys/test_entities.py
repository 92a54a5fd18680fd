"""ODK Entities forms over SMS: an update form (its entity_id is the case answering; its entity list lookups
read that case; its label renames it) and a registration form (a new case from the answers, of the
list_name's type, named by the label, a child of the sender's case), each imported from .csv and .xlsx and
answered through the sandbox."""

from __future__ import annotations

import json

import pytest

from casemsg.cases.models import Case
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import KE
from tests.surveys.forms import KINDS, contact, converse, imported, own_properties, session_of, start, xlsform

pytestmark = pytest.mark.usefixtures("sandbox")

UPDATE = xlsform(
    """type,name,label::English (en),label::Kiswahili (sw),calculation,default,save_to,relevant
       select_one_from_file pregnancies.csv,pregnancy,Which pregnancy?,Ujauzito upi?,,,,
       calculate,edd,,,instance('pregnancies')/root/item[name=${pregnancy}]/edd,,,
       calculate,weight_before,,,instance('pregnancies')/root/item[name=${pregnancy}]/weight_kg,,,
       note,due,Your baby is due on ${edd}.,Mtoto wako anatarajiwa tarehe ${edd}.,,,,
       decimal,weight,What is your weight in kg now?,Uzito wako sasa ni kilo ngapi?,,${weight_before},weight_kg,
       calculate,gain,,,${weight} - ${weight_before},,weight_gain,
       text,new_name,What name should the clinic use?,Kliniki itumie jina gani?,,,,
       select_one yn,moved,Have you moved?,Umehama?,,,,
       text,village,Which village now?,Kijiji gani sasa?,,,village,${moved} = 'yes'""",
    choices="list_name,name,label::English (en),label::Kiswahili (sw)\nyn,yes,Yes,Ndiyo\nyn,no,No,Hapana",
    settings="form_title,form_id,default_language\nPregnancy update,pregnancy_update,English (en)",
    entities="list_name,entity_id,label\npregnancies,${pregnancy},${new_name}",
)


@pytest.mark.parametrize("kind", KINDS)
def test_an_update_form_updates_the_case_answering(api, kind: str) -> None:
    survey = imported(api, UPDATE, kind)  # no CSV attached: the entity list is the case answering
    definition = survey["definition"]
    assert definition["entity"] == {"list_name": "pregnancies", "action": "update", "label": "${new_name}"}
    assert [q for q in definition["questions"] if q["type"] == "metadata"] == [
        {"name": "case.edd", "type": "metadata", "metadata": "case_property", "property": "edd"},
        {"name": "case.weight_kg", "type": "metadata", "metadata": "case_property", "property": "weight_kg"},
        {"name": "pregnancy", "type": "metadata", "metadata": "case_id"},
    ]
    asha = contact(api, KE, "Asha", language_code="sw", edd="2025-01-20", weight_kg="58")
    # the words casemsg adds are the project's texts, translated like the others (Settings → Texts)
    texts = {"texts": {"survey_prompt_keep": {"sw": "Jibu {word} kubaki na {value}."}}}
    r = api.client.put(api.url("texts"), json.dumps(texts), content_type="application/json", **api._h(None))
    assert r.status_code == 200, r.content
    assert start(api, survey["id"], asha) == (
        "Mtoto wako anatarajiwa tarehe 2025-01-20.\nUzito wako sasa ni kilo ngapi? Jibu #SKIP kubaki na 58."
    )
    assert converse(api, KE, ["61.5", "Asha Otieno", "1", "Kanyakwar"]) == [
        ("61.5", "Kliniki itumie jina gani?"),
        ("Asha Otieno", "Umehama? 1 Ndiyo 2 Hapana"),
        ("1", "Kijiji gani sasa?"),
        ("Kanyakwar", ""),
    ]
    assert session_of(asha).status == SurveySession.COMPLETED
    assert asha.name == "Asha" and Case.objects.get(pk=asha.pk).name == "Asha Otieno"  # the entity's label
    assert own_properties(asha) == {
        "edd": "2025-01-20",
        "weight_kg": "61.5",
        "weight_gain": "3.5",
        "village": "Kanyakwar",
    }
    assert Case.objects.filter(project__slug=api.slug).count() == 1  # an update creates nothing


REGISTRATION = xlsform(
    """type,name,label,relevant,constraint,save_to
       select_one yn,born,Has your baby been born?,,,
       text,baby_name,What is the baby's name?,${born} = 'yes',,
       select_one sex,sex,Is ${baby_name} a girl or a boy?,${born} = 'yes',,sex
       date,dob,When was ${baby_name} born?,${born} = 'yes',. <= today(),dob
       decimal,birth_weight,What did ${baby_name} weigh at birth in kg?,${born} = 'yes',. > 0.5 and . < 7,
       +birth_weight_kg""",
    choices="list_name,name,label\nyn,yes,Yes\nyn,no,No\nsex,female,Girl\nsex,male,Boy",
    settings="form_title,form_id,sms_parent\nNewborn registration,newborn,sender",
    entities="list_name,label,create_if\nchild,${baby_name},${born} = 'yes'",
)


@pytest.mark.parametrize("kind", KINDS)
def test_a_registration_form_creates_a_child_of_the_case_answering(api, kind: str) -> None:
    survey = imported(api, REGISTRATION, kind)
    assert survey["definition"]["entity"] == {
        "list_name": "child",
        "action": "create",
        "label": "${baby_name}",
        "create_if": "${born} = 'yes'",
        "parent": "sender",
    }
    mother = contact(api, KE, "Amina")
    assert start(api, survey["id"], mother) == "Has your baby been born? 1 Yes 2 No"
    assert converse(api, KE, ["1", "Zawadi", "girl", "20240305", "3,2"]) == [
        ("1", "What is the baby's name?"),
        ("Zawadi", "Is Zawadi a girl or a boy? 1 Girl 2 Boy"),
        ("girl", "When was Zawadi born?"),
        ("20240305", "What did Zawadi weigh at birth in kg?"),
        ("3,2", ""),
    ]
    child = Case.objects.get(project__slug=api.slug, case_type="child")
    assert (child.name, child.parent_id) == ("Zawadi", mother.case_id)
    assert child.properties == {"sex": "female", "dob": "2024-03-05", "birth_weight_kg": "3.2"}
    assert own_properties(mother) == {}  # the sender's case is not changed by a registration

    # create_if false: nothing is created
    start(api, survey["id"], mother)
    assert converse(api, KE, ["2"]) == [("2", "")]
    assert Case.objects.filter(project__slug=api.slug, case_type="child").count() == 1
