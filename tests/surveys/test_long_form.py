"""A long form as programs field them: 300 questions in 20 groups (one of them skipped by its relevant), with
calculations, choice filters, progress said before each question and an answer refused on the way,
imported from .xlsx and answered end to end: started through the API, each reply taken by the engine as
the router hands it over (`engine.answer`, in its own transaction) and its next question queued for the
sandbox, the answers saved at the end in one case update. The sandbox's inbound and delivery round trip
(about 50 ms a message in the test database, the same for every kind of message) is left out so that the
test measures the survey: a few milliseconds per answer."""

from __future__ import annotations

import time

import pytest

from casemsg.messaging.models import Message
from casemsg.surveys import engine
from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import KE
from tests.surveys.forms import contact, imported, own_properties, session_of, start, xlsform

GROUPS, PER_GROUP = 20, 15  # 300 questions


def long_form() -> str:
    rows = ["type,name,label,relevant,constraint,calculation,choice_filter,appearance,save_to", "hidden,case,,,,,,,"]
    for g in range(1, GROUPS + 1):
        relevant = "${g1_q1} != 'skip'" if g == 7 else ""  # group 7 is skipped: its relevant fails
        rows.append(f"begin group,g{g},Section {g},{relevant},,,,field-list,")
        for i in range(1, PER_GROUP + 1):
            name, kind = f"g{g}_q{i}", i % 5
            if g == 1 and i == 1:
                rows.append(f"select_one skip,{name},Skip section 7?,,,,,,")
            elif kind == 0:
                rows.append(f"integer,{name},Section {g} question {i}: how many?,,. >= 0 and . <= 100,,,,{name}")
            elif kind == 1:
                rows.append(f"select_one region,{name},Section {g} question {i}: region?,,,,,,{name}")
            elif kind == 2:
                prev = f"g{g}_q{i - 1}"
                rows.append(f"select_one district,{name},Section {g} question {i}: district?,,,,region = ${{{prev}}},,")
            elif kind == 3:
                rows.append(f"text,{name},Section {g} question {i}: what?,,,,,,")
            else:
                count = f"g{g}_q{i - 4}" if i > 4 else f"g{g}_q{i}"
                expression = f"${{{count}}} * 2" if i > 4 else "1"
                rows.append(f"calculate,{name},,,,{expression},,,{name}")
        rows.append("end group,,,,,,,,")
    return xlsform(
        "\n".join(rows),
        choices="list_name,name,label,region\nskip,skip,Skip,\nskip,keep,Keep,\nregion,east,East,\nregion,west,West,\n"
        "district,e1,East one,east\ndistrict,e2,East two,east\ndistrict,w1,West one,west",
        settings="form_title,form_id,sms_progress\nLong form,long_form,yes",
        entities="list_name,entity_id\nperson,${case}",
    )


def reply_for(text: str) -> str:
    if "Skip section 7" in text:
        return "1"
    if "how many" in text:
        return "7"
    if "region" in text:
        return "2"  # West
    if "district" in text:
        return "1"  # West one: the only district of the west
    return "Fine"


@pytest.mark.usefixtures("sandbox")
def test_a_300_question_form_in_20_groups_end_to_end(api) -> None:
    survey = imported(api, long_form(), "xlsx")
    questions = survey["definition"]["questions"]
    assert len(questions) == 1 + GROUPS * PER_GROUP
    asked = [q for q in questions if q["type"] not in ("calculate", "hidden", "metadata")]
    asha = contact(api, KE)
    text = start(api, survey["id"], asha)
    assert text == f"[1/{len(asked)}] Skip section 7? 1 Skip 2 Keep"

    def answer(reply: str) -> str:
        """The reply taken as the router would, and the text it queued for the number ('' at the end)."""
        last = Message.objects.order_by("-pk").values_list("pk", flat=True)[0]
        outcome = engine.answer(SurveySession.objects.select_related("case", "project", "gateway",
                                "survey_version").get(case=asha, status=SurveySession.OPEN), reply)  # fmt: skip
        assert outcome in (engine.ANSWERED, engine.RETRY, engine.COMPLETED), outcome
        queued = Message.objects.filter(case=asha, direction=Message.OUT, pk__gt=last).values_list("content", flat=True)
        # (queued, not yet sent: the text is the content's template, its braces doubled)
        return "\n".join(c["text"].replace("{{", "{").replace("}}", "}") for c in queued)

    t0 = time.perf_counter()
    answered, refused = 0, 0
    while text:
        if "district" in text:
            assert text.endswith("district? 1 West one")  # the choice filter on the region answered before
        reply = reply_for(text)
        if answered >= 10 and not refused and "how many" in text:
            reply = "500"  # refused once by the constraint, then answered
        text = answer(reply)
        if text.startswith("That answer is not accepted"):
            refused += 1
            text = text.split("\n", 1)[1]
            continue
        answered += 1
    elapsed = time.perf_counter() - t0
    # section 7 is skipped, and g1_q2's districts are filtered by the answer 'skip': none left, not asked
    skipped = sum(1 for q in asked if q["name"].startswith("g7_")) + 1
    assert (answered, refused) == (len(asked) - skipped, 1)
    session = session_of(asha)
    assert session.status == SurveySession.COMPLETED
    properties = own_properties(asha)
    assert properties["g2_q5"] == "7" and properties["g2_q9"] == "14"  # a calculate saved through save_to
    assert not any(k.startswith("g7_") for k in properties)  # the skipped section saved nothing
    print(f"\n300 questions, 20 groups: {answered} answers in {elapsed:.1f} s "
          f"({elapsed / answered * 1000:.1f} ms per answer)")  # fmt: skip
    assert elapsed < 8
