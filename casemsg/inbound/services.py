"""Project keywords: create, change, delete (the API calls these). The checks common to every keyword
live here; each action's own checks live in its entry of `keywords.ACTIONS`."""

from __future__ import annotations

from dataclasses import asdict

from django.db import IntegrityError, transaction

from casemsg.consent import words
from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.inbound.keywords import ACTIONS, KeywordFields, check_reply
from casemsg.inbound.models import Keyword
from casemsg.projects.models import Project

MAX_LENGTH = 40


def validate(fields: KeywordFields, project: Project) -> str:
    """Check a keyword; returns the word as stored (upper-case)."""
    word = fields.keyword.strip().upper()
    if not word or len(word.split()) != 1 or len(word) > MAX_LENGTH:
        raise InputError(errors.VALIDATION_ERROR, f"A keyword is one word of at most {MAX_LENGTH} characters.")
    # the project's own opt-out/opt-in words are handled before keywords, so a keyword could never fire
    reserved = words.opt_out_words(project) | words.opt_in_words(project) | set(words.HELP_WORDS)
    if word in reserved:
        raise InputError(errors.RESERVED_KEYWORD, f"'{word}' is reserved for opt-out, opt-in and help.")
    action = ACTIONS.get(fields.action)
    if action is None:
        raise InputError(errors.VALIDATION_ERROR, f"action must be one of {', '.join(ACTIONS)}.")
    action.validate(fields, project)
    check_reply(fields)
    return word


def get_keyword(project: Project, keyword_id: int) -> Keyword:
    k = Keyword.objects.filter(project=project, pk=keyword_id).first()
    if k is None:
        raise InputError(errors.KEYWORD_NOT_FOUND, f"No keyword {keyword_id} in this project.", 404)
    return k


def list_keywords(project: Project) -> list[Keyword]:
    return list(Keyword.objects.filter(project=project).order_by("keyword"))


def create_keyword(project: Project, fields: KeywordFields) -> Keyword:
    word = validate(fields, project)
    k = Keyword(project=project, **{**asdict(fields), "keyword": word})
    _save(k)
    return k


def update_keyword(project: Project, keyword_id: int, fields: KeywordFields) -> Keyword:
    k = get_keyword(project, keyword_id)
    word = validate(fields, project)
    for f, v in {**asdict(fields), "keyword": word}.items():
        setattr(k, f, v)
    _save(k)
    return k


def delete_keyword(project: Project, keyword_id: int) -> None:
    get_keyword(project, keyword_id).delete()


def _save(k: Keyword) -> None:
    try:
        with transaction.atomic():
            k.save()
    except IntegrityError as exc:
        raise InputError(errors.KEYWORD_EXISTS, f"The keyword '{k.keyword}' exists in this project.", 409) from exc
