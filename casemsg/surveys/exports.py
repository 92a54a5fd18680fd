"""A survey's answers as a table: one row per session (every version's), one column per question — the newest
version's questions in the order they are asked, then those only older versions had — before them what the
session was (its case, number, status, language, version, times in UTC). As CSV (streamed) and as .xlsx
(written row by row to a temporary file): the same rows, every cell safe in a spreadsheet
(casemsg.core.spreadsheet), in constant memory whatever the number of sessions.

An answer is the stored canonical answer (casemsg.surveys.answers: a choice's name, `YYYY-MM-DD`, `HH:MM`, a
number as typed without `+` or leading zeros); a question the session did not reach is empty.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Any

from casemsg.core import spreadsheet
from casemsg.projects.models import Project
from casemsg.surveys.definition import ASKED_TYPES, COMPUTED_TYPES
from casemsg.surveys.models import Survey, SurveySession, SurveyVersion

SESSION_COLUMNS = [
    "session_id",
    "case_id",
    "case_name",
    "phone_number",
    "status",
    "error",
    "language",
    "version",
    "started_on",
    "completed_on",
]
ANSWERED_TYPES = (*ASKED_TYPES, *COMPUTED_TYPES)  # the questions that hold an answer (not notes)
CHUNK = 2000


def question_columns(survey: Survey) -> list[str]:
    """The names of the questions that hold an answer: the newest version's in order, then older versions'."""
    names: dict[str, None] = {}
    for definition in (
        SurveyVersion.objects.filter(survey=survey).order_by("-number").values_list("definition", flat=True)
    ):
        for q in (definition or {}).get("questions", []):
            if isinstance(q, dict) and q.get("type") in ANSWERED_TYPES and isinstance(q.get("name"), str):
                names.setdefault(q["name"], None)
    return list(names)


def header(survey: Survey) -> list[str]:
    return [*SESSION_COLUMNS, *question_columns(survey)]


def rows(project: Project, survey: Survey, questions: list[str]) -> Iterator[list[Any]]:
    """One row per session of the survey, oldest first, read in chunks."""
    qs = (
        SurveySession.objects.filter(project=project, survey_version__survey=survey)
        .order_by("pk")
        .values_list(
            "pk",
            "case__case_id",
            "case__name",
            "phone_number",
            "status",
            "error",
            "language",
            "survey_version__number",
            "started_on",
            "completed_on",
            "answers",
        )
    )
    for pk, case_id, name, number, status, error, language, version, started, completed, answers in qs.iterator(
        chunk_size=CHUNK
    ):
        given = answers if isinstance(answers, dict) else {}
        yield [
            pk,
            case_id or "",
            name or "",
            number,
            status,
            error,
            language,
            version,
            started.isoformat(),
            completed.isoformat() if completed else "",
            *(_answer(given.get(q)) for q in questions),
        ]


def _answer(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def csv_lines(project: Project, survey: Survey) -> Iterator[str]:
    """The answers as CSV lines, header first (for a streamed download)."""
    head = header(survey)
    return spreadsheet.csv_lines(head, rows(project, survey, head[len(SESSION_COLUMNS) :]))


def xlsx_file(project: Project, survey: Survey) -> IO[bytes]:
    """The answers as an .xlsx workbook in a temporary file, rewound (deleted once closed)."""
    head = header(survey)
    out = tempfile.TemporaryFile(suffix=".xlsx")
    spreadsheet.write_xlsx(out, head, rows(project, survey, head[len(SESSION_COLUMNS) :]), title="answers")
    out.seek(0)
    return out
