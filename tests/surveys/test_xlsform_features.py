"""Each XLSForm feature end to end: a form that uses it, imported through the API from .csv and from .xlsx,
started for a case and answered through the sandbox, with the messages expected and the case's
properties at the end (calculated values saved through `save_to` among them)."""

from __future__ import annotations

import datetime as dt

import pytest

from casemsg.surveys.models import SurveySession
from tests.inbound.conftest import KE, KE2
from tests.surveys.forms import KINDS, Feature, contact, converse, imported, own_properties, session_of, start, xlsform

pytestmark = pytest.mark.usefixtures("sandbox")

TODAY = dt.datetime.now(dt.UTC).date()  # the project's zone is UTC
LMP = TODAY - dt.timedelta(days=73)  # 10 weeks and 3 days ago: 10 weeks, whatever the hour
ENTITY = "list_name,entity_id\nperson,${case}"  # an update form: the answers go to the case answering

FEATURES = [
    Feature(
        "calculate",
        xlsform(
            """type,name,label,calculation,save_to,constraint
               hidden,case,,,,
               date,lmp,When did your last period start?,,lmp,. <= today()
               calculate,ga_weeks,,int((today() - ${lmp}) div 7),ga_weeks,
               calculate,edd,,"format-date(date(decimal-date-time(${lmp}) + 280), '%d %b %Y')",edd,
               note,ga_note,You are ${ga_weeks} weeks pregnant; your baby is due on ${edd}.,,,
               integer,visits,How many clinic visits so far?,,anc_visits,. < 20
               calculate,more,,"if(${visits} < 4 and ${ga_weeks} > 20, 'yes', 'no')",needs_visits,""",
            entities=ENTITY,
        ),
        "When did your last period start?",
        [
            (
                LMP.strftime("%Y%m%d"),
                f"You are 10 weeks pregnant; your baby is due on "
                f"{(LMP + dt.timedelta(days=280)).strftime('%d %b %Y')}.\nHow many clinic visits so far?",
            ),
            ("2", ""),
        ],
        {
            "lmp": LMP.isoformat(),
            "ga_weeks": "10",
            "edd": (LMP + dt.timedelta(days=280)).strftime("%d %b %Y"),
            "anc_visits": "2",
            "needs_visits": "no",
        },
    ),
    Feature(
        "calculate reading later answers",
        xlsform(
            """type,name,label,calculation,relevant,save_to
               hidden,case,,,,
               calculate,bmi,,"round(${weight} div (${height} * ${height}), 1)",,bmi
               decimal,weight,What is your weight in kg?,,,
               decimal,height,What is your height in metres?,,,
               note,say,Your BMI is ${bmi}.,,${bmi} != '',""",
            entities=ENTITY,
        ),
        "What is your weight in kg?",
        [("70", "What is your height in metres?"), ("1.75", "Your BMI is 22.9.")],
        {"bmi": "22.9"},
    ),
    Feature(
        "hidden and metadata",
        xlsform(
            """type,name,label,default,save_to
               start,start,,,
               today,today,,,last_contact
               phonenumber,phone,,,reached_on
               deviceid,device,,,reached_through
               username,user,,,
               hidden,case,,,
               hidden,programme,,anc-2024,programme
               text,name,What is your name?,,
               end,end,,,""",
            entities=ENTITY,
        ),
        "What is your name?",
        [("Asha", "")],
        {
            "last_contact": TODAY.isoformat(),
            "reached_on": KE,
            "reached_through": "casemsg:sandbox",
            "programme": "anc-2024",
        },
        answers={"user": "Asha", "name": "Asha", "programme": "anc-2024", "today": TODAY.isoformat()},
    ),
    Feature(
        "defaults and skip",
        xlsform(
            """type,name,label,default,save_to
               hidden,case,,,
               integer,children,How many children do you have?,0,children
               decimal,weight,What is your weight in kg?,,weight_kg
               date,visit,When is your next visit?,,next_visit
               text,village,Which village do you live in?,,village
               date,last,When was your last visit?,,last_visit""",
            settings="form_title,form_id,sms_prefill\nDefaults,defaults,yes",
            entities=ENTITY,
        ),
        "How many children do you have? Reply #SKIP to keep 0.",
        [
            ("#skip", "What is your weight in kg? Reply #SKIP to keep 61.5."),
            ("#SKIP", "When is your next visit? Reply 1 to keep 2026-03-04."),
            ("1", "Which village do you live in?"),
            ("#SKIP", "When was your last visit?"),  # nothing to keep: an empty answer, as a blank reply would be
            ("1", "Please reply with a date as YYYYMMDD, for example 20240315.\nWhen was your last visit?"),
            ("#skip", ""),
        ],
        {"children": "0", "weight_kg": "61.5", "next_visit": "2026-03-04"},
        case={"weight_kg": "61.5", "next_visit": "2026-03-04"},
    ),
    Feature(
        "acknowledge",
        xlsform(
            """type,name,label,required,save_to
               hidden,case,,,
               acknowledge,danger,Bleeding is a danger sign: please go to the clinic today.,yes,danger_acknowledged
               trigger,thanks,Thank you for telling us.,,""",
            entities=ENTITY,
        ),
        "Bleeding is a danger sign: please go to the clinic today. Reply OK.",
        [
            ("later", "Please reply OK.\nBleeding is a danger sign: please go to the clinic today. Reply OK."),
            ("ok", "Thank you for telling us. Reply OK."),
            ("1", ""),
        ],
        {"danger_acknowledged": "OK"},
    ),
    Feature(
        "groups",
        xlsform(
            """type,name,label,relevant,appearance,save_to
               hidden,case,,,,
               select_one yn,pregnant,Are you pregnant?,,,pregnant
               begin group,anc,Antenatal care,${pregnant} = 'yes',field-list,
               integer,months,How many months?,,,months
               begin group,late,Late pregnancy,${months} >= 7,,
               select_one yn,bag,Is your birth bag ready?,,,birth_bag
               end group,,,,,
               end group,,,,,
               text,comment,Anything else?,,,comment""",
            choices="list_name,name,label\nyn,yes,Yes\nyn,no,No",
            entities=ENTITY,
        ),
        "Are you pregnant? 1 Yes 2 No",
        [("1", "How many months?"), ("8", "Is your birth bag ready? 1 Yes 2 No"), ("2", "Anything else?"), ("No", "")],
        {"pregnant": "yes", "months": "8", "birth_bag": "no", "comment": "No"},
    ),
    Feature(
        "repeat with a count",
        xlsform(
            """type,name,label,repeat_count,constraint,calculation,save_to
               hidden,case,,,,,
               integer,n_children,How many children under five live with you?,,. <= 4,,
               begin repeat,child,Child,${n_children},,,
               calculate,position,,,,position(..),
               text,name,What is the name of child ${position}?,,,,
               integer,age,How old is ${name} in months?,,. < 60,,
               end repeat,,,,,,
               calculate,total,,,,count(${child}),children_count""",
            entities=ENTITY,
        ),
        "How many children under five live with you?",
        [
            ("5", "That answer is not accepted. Please reply again.\nHow many children under five live with you?"),
            ("2", "What is the name of child 1?"),
            ("Juma", "How old is Juma in months?"),
            ("14", "What is the name of child 2?"),
            ("Neema", "How old is Neema in months?"),
            ("60", "That answer is not accepted. Please reply again.\nHow old is Neema in months?"),
            ("3", ""),
        ],
        {
            "children_count": "2",
            "child_1_name": "Juma",
            "child_1_age": "14",
            "child_2_name": "Neema",
            "child_2_age": "3",
        },
    ),
    Feature(
        "repeat as a loop",
        xlsform(
            """type,name,label,calculation,save_to
               hidden,case,,,
               begin repeat,visit,clinic visit,,
               date,date,When was the visit?,,
               end repeat,,,,
               calculate,visits,,count(${visit}),visit_count
               calculate,last,,"max(${date})",""",
            settings="form_title,form_id,sms_repeat_max\nVisits,visits,3",
            entities=ENTITY,
        ),
        "When was the visit?",
        [
            ("20240110", "Add another clinic visit? 1 Yes 2 No"),
            ("yes", "When was the visit?"),
            ("20240220", "Add another clinic visit? 1 Yes 2 No"),
            ("2", ""),
        ],
        {"visit_count": "2", "visit_1_date": "2024-01-10", "visit_2_date": "2024-02-20"},
    ),
    Feature(
        "messages and hints per language",
        xlsform(
            """type,name,label::English,label::Kiswahili,hint::English,hint::Kiswahili,constraint,
               +constraint_message::English,constraint_message::Kiswahili,required,required_message::English,
               +required_message::Kiswahili,save_to
               hidden,case,,,,,,,,,,,
               integer,weeks,How many weeks pregnant are you?,Una ujauzito wa wiki ngapi?,
               +Count from your last period,Hesabu tangu hedhi yako ya mwisho,. >= 4 and . <= 42,
               +Reply a number from 4 to 42,Jibu namba kati ya 4 na 42,yes,We need the weeks,Tunahitaji wiki,weeks""",
            settings="form_title,form_id,default_language\nWeeks,weeks,English",
            entities=ENTITY,
        ),
        "How many weeks pregnant are you? Count from your last period",
        [
            ("", "We need the weeks\nHow many weeks pregnant are you? Count from your last period"),
            ("50", "Reply a number from 4 to 42\nHow many weeks pregnant are you? Count from your last period"),
            ("32", ""),
        ],
        {"weeks": "32"},
    ),
    Feature(
        "dynamic required and read_only",
        xlsform(
            """type,name,label,required,read_only,calculation,save_to
               hidden,case,,,,,
               select_one yn,fever,Do you have a fever?,yes,,,fever
               integer,days,For how many days?,${fever} = 'yes',,,fever_days
               integer,score,Your danger score is,,yes,"if(${fever} = 'yes', 2, 0)",score
               text,notes,Notes for the nurse?,,${fever} = 'no',,notes""",
            choices="list_name,name,label\nyn,yes,Yes\nyn,no,No",
            entities=ENTITY,
        ),
        "Do you have a fever? 1 Yes 2 No",
        [
            ("1", "For how many days?"),
            ("", "An answer is required. Please reply again.\nFor how many days?"),
            ("3", "Your danger score is 2\nNotes for the nurse?"),
            ("Tired", ""),
        ],
        {"fever": "yes", "fever_days": "3", "score": "2", "notes": "Tired"},
    ),
    Feature(
        "choice_filter",
        xlsform(
            """type,name,label,choice_filter,save_to
               hidden,case,,,
               select_one county,county,Which county?,,county
               select_one subcounty,subcounty,Which sub-county?,county = ${county},subcounty""",
            choices="""list_name,name,label,county
                       county,nairobi,Nairobi,
                       county,kisumu,Kisumu,
                       subcounty,westlands,Westlands,nairobi
                       subcounty,langata,Lang'ata,nairobi
                       subcounty,kisumu_east,Kisumu East,kisumu
                       subcounty,nyando,Nyando,kisumu
                       subcounty,muhoroni,Muhoroni,kisumu""",
            entities=ENTITY,
        ),
        "Which county? 1 Nairobi 2 Kisumu",
        [
            ("2", "Which sub-county? 1 Kisumu East 2 Nyando 3 Muhoroni"),
            (
                "westlands",
                "Please reply with the number of your choice, from 1 to 3.\n"
                "Which sub-county? 1 Kisumu East 2 Nyando 3 Muhoroni",
            ),
            ("3", ""),
        ],
        {"county": "kisumu", "subcounty": "muhoroni"},
    ),
    Feature(
        "select_one_from_file",
        xlsform(
            """type,name,label,save_to
               hidden,case,,
               select_one_from_file facilities.csv,facility,Which facility do you attend?,facility""",
            entities=ENTITY,
        ),
        "Which facility do you attend? 1 Kisumu County Hospital 2 Nyando Health Centre",
        [("Nyando Health Centre", "")],
        {"facility": "f002"},
        attachments={
            "facilities.csv": "name,label,district\nf001,Kisumu County Hospital,kisumu\n"
            "f002,Nyando Health Centre,nyando\n"
        },
    ),
    Feature(
        "select_one_external",
        xlsform(
            """type,name,label,choice_filter,save_to
               hidden,case,,,
               select_one district,district,Which district?,,district
               select_one_external village,village,Which village?,district = ${district},village""",
            choices="list_name,name,label\ndistrict,north,North\ndistrict,south,South",
            external_choices="list_name,name,label,district\nvillage,alpha,Alpha,north\nvillage,beta,Beta,south\n"
            "village,gamma,Gamma,south",
            entities=ENTITY,
        ),
        "Which district? 1 North 2 South",
        [("2", "Which village? 1 Beta 2 Gamma"), ("2", "")],
        {"district": "south", "village": "gamma"},
    ),
    Feature(
        "or_other",
        xlsform(
            """type,name,label,save_to
               hidden,case,,
               select_one source or_other,water,Where do you get water?,water_source""",
            choices="list_name,name,label\nsource,tap,Tap\nsource,well,Well",
            entities=ENTITY,
        ),
        "Where do you get water? 1 Tap 2 Well 3 Other",
        [("3", "Specify other."), ("River", "")],
        {"water_source": "other"},
        answers={"water": "other", "water_other": "River"},
    ),
    Feature(
        "dateTime",
        xlsform(
            """type,name,label,save_to
               hidden,case,,
               dateTime,delivery,When was the baby born?,born_at""",
            entities=ENTITY,
        ),
        "When was the baby born?",
        [
            (
                "20240310",
                "Please reply with a date and a time as YYYYMMDD HHMM, for example 20240315 0930.\n"
                "When was the baby born?",
            ),
            ("20240310 0415", ""),
        ],
        {"born_at": "2024-03-10T04:15:00.000+00:00"},
    ),
    Feature(
        "range, rank and progress",
        xlsform(
            """type,name,label,parameters,save_to
               hidden,case,,,
               range,pain,How bad is the pain from 1 to 5?,start=1 end=5 step=1,pain
               rank worries,worries,Order your worries (most first),,worries""",
            choices="list_name,name,label\nworries,money,Money\nworries,food,Food\nworries,health,Health",
            settings="form_title,form_id,sms_progress\nProgress,progress,yes",
            entities=ENTITY,
        ),
        "[1/2] How bad is the pain from 1 to 5?",
        [
            ("7", "That answer is not accepted. Please reply again.\n[1/2] How bad is the pain from 1 to 5?"),
            ("4", "[2/2] Order your worries (most first) 1 Money 2 Food 3 Health"),
            ("3 1 2", ""),
        ],
        {"pain": "4", "worries": "health money food"},
    ),
    Feature(
        "pulldata",
        xlsform(
            """type,name,label,calculation,save_to
               hidden,case,,,
               csv-external,fees,,,
               select_one service,service,Which service?,,service
               calculate,fee,,"pulldata('fees', 'fee', 'service', ${service})",fee
               note,say,The fee for ${service} is ${fee} shillings.,,""",
            choices="list_name,name,label\nservice,anc,Antenatal visit\nservice,scan,Ultrasound scan",
            entities=ENTITY,
        ),
        "Which service? 1 Antenatal visit 2 Ultrasound scan",
        [("2", "The fee for Ultrasound scan is 1500 shillings.")],
        {"service": "scan", "fee": "1500"},
        attachments={"fees.csv": "service,fee\nanc,0\nscan,1500\n"},
    ),
    Feature(
        # a relevant reading a LATER question (a forward reference): evaluated with it empty when reached
        # (so the nickname is asked), then checked again as answers arrive: the "no" that follows makes the
        # nickname not relevant, and its answer is not saved; the children count, relevant on a later
        # "yes", is never asked (a survey does not go back)
        "relevant reading a later answer",
        xlsform(
            """type,name,label,relevant,save_to
               hidden,case,,,
               text,nickname,What should we call you?,${consent} = '' or ${consent} = 'yes',nickname
               integer,children,How many children do you have?,${consent} = 'yes',children
               select_one yn,consent,May we text you again?,,consent""",
            choices="list_name,name,label\nyn,yes,Yes\nyn,no,No",
            entities=ENTITY,
        ),
        "What should we call you?",
        [("Mama Asha", "May we text you again? 1 Yes 2 No"), ("2", "")],
        {"consent": "no"},
        answers={"nickname": None, "children": None, "consent": "no"},
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("feature", FEATURES, ids=str)
def test_a_feature_imported_and_answered(api, feature: Feature, kind: str) -> None:
    survey = imported(api, feature.form, kind, feature.attachments or None)
    asha = contact(api, KE, "Asha", **feature.case)
    assert start(api, survey["id"], asha) == feature.first
    replies = [reply for reply, _ in feature.conversation]
    assert converse(api, KE, replies) == feature.conversation
    session = session_of(asha)
    assert session.status == SurveySession.COMPLETED
    assert own_properties(asha) == {**feature.case, **feature.properties}
    if feature.answers is not None:
        assert {k: session.answers.get(k) for k in feature.answers} == feature.answers


TWO_LANGUAGES = xlsform(
    """type,name,label::English,label::Kiswahili,hint::English,hint::Kiswahili,save_to
       hidden,case,,,,,
       text,child,What is your child's name?,Jina la mtoto wako ni nani?,,,child_name
       select_one food,food,What did ${child} eat today?,${child} alikula nini leo?,,,food
       integer,meals,How many meals of ${food} did ${child} have?,${child} alikula milo mingapi ya ${food}?,
       +Reply 0 if none,Jibu 0 kama hakuna,meals
       note,thanks,Thank you: ${child} had ${meals} meals of ${food}.,
       +Asante: ${child} alikula milo ${meals} ya ${food}.,,,""",
    choices="list_name,name,label::English,label::Kiswahili\nfood,ugali,Maize meal,Ugali\nfood,rice,Rice,Wali",
    settings="form_title,form_id,default_language\nMeals,meals,English",
    entities=ENTITY,
)


@pytest.mark.parametrize("kind", KINDS)
def test_references_in_labels_in_two_languages(api, kind: str) -> None:
    """`${q}` in a label, a choice said by its label in the person's language, hints in each language."""
    survey = imported(api, TWO_LANGUAGES, kind)
    assert survey["definition"]["languages"] == ["en", "sw"]
    asha = contact(api, KE, "Asha")
    baraka = contact(api, KE2, "Baraka", language_code="sw")
    assert start(api, survey["id"], asha) == "What is your child's name?"
    assert start(api, survey["id"], baraka) == "Jina la mtoto wako ni nani?"
    assert converse(api, KE, ["Neema", "1", "2"]) == [
        ("Neema", "What did Neema eat today? 1 Maize meal 2 Rice"),
        ("1", "How many meals of Maize meal did Neema have? Reply 0 if none"),
        ("2", "Thank you: Neema had 2 meals of Maize meal."),
    ]
    assert converse(api, KE2, ["Juma", "wali", "3"]) == [
        ("Juma", "Juma alikula nini leo? 1 Ugali 2 Wali"),
        ("wali", "Juma alikula milo mingapi ya Wali? Jibu 0 kama hakuna"),
        ("3", "Asante: Juma alikula milo 3 ya Wali."),
    ]
    assert own_properties(asha) == {"child_name": "Neema", "food": "ugali", "meals": "2"}
    assert own_properties(baraka) == {"child_name": "Juma", "food": "rice", "meals": "3"}
