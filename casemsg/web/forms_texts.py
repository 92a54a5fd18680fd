"""The Texts page's form: one box per text casemsg sends and per project language, holding the project's own
translation (empty: the fallback applies — shown in the box as its placeholder). `changes()` is the body
of PUT …/texts, checked by casemsg.consent.texts.update (the API's rules and sentences)."""

from __future__ import annotations

from typing import Any

from django import forms

from casemsg.consent.texts import MAX_TEXT
from casemsg.core.errors import InputError


def field_name(key: str, language: str) -> str:
    return f"t__{key}__{language}"


class TextsForm(forms.Form):
    def __init__(self, *args: Any, listing: list[dict[str, Any]], languages: list[str], **kwargs: Any):
        kwargs.setdefault(
            "initial",
            {field_name(t["key"], lang): text for t in listing for lang, text in t["translations"].items()},
        )
        super().__init__(*args, **kwargs)
        self.listing, self.languages = listing, languages
        for t in listing:
            for lang in languages:
                shown = t["effective"].get(lang, {})
                fallback = shown.get("text", "") if not shown.get("own") else t["default"]
                hint = f"{fallback}" if fallback else "(nothing is sent)"
                self.fields[field_name(t["key"], lang)] = forms.CharField(
                    required=False,
                    max_length=MAX_TEXT,
                    label=lang,
                    strip=True,
                    widget=forms.Textarea(attrs={"rows": 2, "placeholder": hint}),
                )

    def items(self) -> list[tuple[str, list[tuple[dict[str, Any], list[forms.BoundField]]]]]:
        """(group, [(text, its boxes)]), in the catalogue's order."""
        groups: dict[str, list[tuple[dict[str, Any], list[forms.BoundField]]]] = {}
        for t in self.listing:
            boxes = [self[field_name(t["key"], lang)] for lang in self.languages]
            groups.setdefault(t["group"], []).append((t, boxes))
        return list(groups.items())

    def changes(self) -> dict[str, dict[str, str | None]]:
        """Only what differs from the project's own: an emptied box removes the translation (null)."""
        out: dict[str, dict[str, str | None]] = {}
        for t in self.listing:
            for lang in self.languages:
                value = (self.cleaned_data.get(field_name(t["key"], lang)) or "").strip()
                if value != t["translations"].get(lang, ""):
                    out.setdefault(t["key"], {})[lang] = value or None
        return out

    def show_refusal(self, exc: InputError) -> None:
        """On the box the sentence names (texts.KEY.LANG: …), else on the text's first box, else above."""
        head = exc.message.split(":", 1)[0].split()[0] if exc.message else ""
        parts = head.split(".")
        if len(parts) >= 2 and parts[0] == "texts":
            key = parts[1]
            lang = parts[2] if len(parts) > 2 else next((lang for lang in self.languages), "")
            name = field_name(key, lang)
            if name in self.fields:
                self.add_error(name, exc.message)
                return
        self.add_error(None, exc.message)


class TranslationsUploadForm(forms.Form):
    file = forms.FileField(
        label="Translations file",
        help_text="CSV or .xlsx, as the download writes it (at most 5 MB). Nothing changes before you apply it.",
    )
