"""The group form: a name, its kind, and for a dynamic group the case type and a condition builder — rows
of property, operator (in words: "is", "is one of", "is a date within the next … days") and value, and the
contact states (can receive SMS, has consent, opted out: any, yes or no). `body()` is the API's body
(`casemsg.groups.services.GroupIn`); the groups services check the rest, in the API's words."""

from __future__ import annotations

from typing import Any

from django import forms

from casemsg.cases import queries as case_queries
from casemsg.groups import conditions, services
from casemsg.groups.models import Group
from casemsg.projects.models import Project

CONDITION_ROWS = 6
_ANY, _YES, _NO = "", "yes", "no"
_DAYS = ("within_next_days", "within_last_days")


def _max(name: str) -> int:
    for meta in services.GroupIn.model_fields[name].metadata:
        if hasattr(meta, "max_length"):
            return int(meta.max_length)
    raise KeyError(name)


class GroupForm(forms.Form):
    name = forms.CharField(max_length=_max("name"))
    description = forms.CharField(
        required=False, max_length=_max("description"), widget=forms.Textarea(attrs={"rows": 2})
    )
    kind = forms.ChoiceField(
        choices=[
            (Group.DYNAMIC, "Dynamic: the cases that meet conditions, as they are each time it is used"),
            (Group.STATIC, "Static: cases added by hand, by CSV or through the API"),
        ],
        initial=Group.DYNAMIC,
        widget=forms.RadioSelect,
    )
    case_type = forms.CharField(
        required=False,
        max_length=_max("case_type"),
        label="Cases of type",
        widget=forms.TextInput(attrs={"list": "case-types"}),
    )
    case_ids = forms.CharField(
        required=False,
        max_length=100_000,
        label="First members",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="case ids, separated by commas or lines (static groups)",
    )

    def __init__(self, *args: Any, project: Project, group: Group | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project, self.group = project, group
        self.case_types = case_queries.case_types(project)
        stored = [c for c in (group.conditions or []) if "property" in c] if group is not None else []
        self.rows = max(CONDITION_ROWS, len(stored) + 1)  # every stored condition, and one more
        if group is not None:
            self.fields["kind"].disabled = True
            self.fields["kind"].help_text = "a group's kind never changes"
            del self.fields["case_ids"]
        operators = [("", "—"), *((op, conditions.OPERATOR_LABELS[op]) for op in conditions.OPERATORS)]
        for i in range(self.rows):
            n = i + 1
            self.fields[f"cond_property_{i}"] = forms.CharField(
                required=False,
                max_length=conditions.MAX_PROPERTY,
                label="Property",
                widget=forms.TextInput(attrs={"aria-label": f"Condition {n}: property"}),
            )
            self.fields[f"cond_operator_{i}"] = forms.ChoiceField(
                required=False,
                choices=operators,
                label="",
                widget=forms.Select(attrs={"aria-label": f"Condition {n}: operator"}),
            )
            self.fields[f"cond_value_{i}"] = forms.CharField(
                required=False,
                max_length=conditions.MAX_TEXT * 10,
                label="Value",
                widget=forms.TextInput(attrs={"aria-label": f"Condition {n}: value"}),
            )
        for state in conditions.CONTACT_STATES:
            yes, no = conditions.CONTACT_LABELS[state]
            self.fields[f"contact_{state}"] = forms.ChoiceField(
                required=False,
                choices=[(_ANY, "any"), (_YES, yes), (_NO, no)],
                label=yes[0].upper() + yes[1:],
                widget=forms.Select(attrs={"aria-label": f"Contact: {yes}"}),
            )

    def condition_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (self[f"cond_property_{i}"], self[f"cond_operator_{i}"], self[f"cond_value_{i}"]) for i in range(self.rows)
        ]

    def contact_fields(self) -> list[forms.BoundField]:
        return [self[f"contact_{state}"] for state in conditions.CONTACT_STATES]

    def _conditions(self) -> list[dict[str, Any]]:
        d = self.cleaned_data
        out: list[dict[str, Any]] = []
        for i in range(self.rows):
            prop, op = (d.get(f"cond_property_{i}") or "").strip(), d.get(f"cond_operator_{i}") or ""
            value = (d.get(f"cond_value_{i}") or "").strip()
            if not prop and not op:
                continue
            c: dict[str, Any] = {"property": prop, "operator": op or "equals"}
            if op == "in":
                c["value"] = [v.strip() for v in value.split(",") if v.strip()]
            elif op in _DAYS and value.isdigit():
                c["value"] = int(value)
            elif value or op not in ("is_set", "is_not_set"):
                c["value"] = value
            out.append(c)
        for state in conditions.CONTACT_STATES:
            choice = d.get(f"contact_{state}") or _ANY
            if choice != _ANY:
                out.append({"contact": state, "value": choice == _YES})
        return out

    def body(self) -> dict[str, Any]:
        """The API's body for these fields (call after is_valid())."""
        d = self.cleaned_data
        kind = self.group.kind if self.group is not None else d["kind"]
        out: dict[str, Any] = {"name": d["name"], "description": d.get("description") or ""}
        if self.group is None:
            out["kind"] = kind
        if kind == Group.DYNAMIC:
            out["case_type"] = d.get("case_type") or ""
            out["conditions"] = self._conditions()
        elif self.group is None and d.get("case_ids"):
            out["case_ids"] = [v for v in (x.strip() for x in d["case_ids"].replace(",", "\n").splitlines()) if v]
        return out


def group_initial(g: Group) -> dict[str, Any]:
    """The form's values for a stored group."""
    initial: dict[str, Any] = {"name": g.name, "description": g.description, "kind": g.kind, "case_type": g.case_type}
    rows = [c for c in (g.conditions or []) if "property" in c]
    for i, c in enumerate(rows):
        value = c.get("value")
        initial.update(
            {
                f"cond_property_{i}": c.get("property", ""),
                f"cond_operator_{i}": c.get("operator", ""),
                f"cond_value_{i}": ", ".join(map(str, value))
                if isinstance(value, list)
                else ("" if value is None else str(value)),
            }
        )
    for c in g.conditions or []:
        if "contact" in c:
            initial[f"contact_{c['contact']}"] = _YES if c.get("value", True) else _NO
    return initial


class MembersForm(forms.Form):
    """Cases to add to a static group, by case id."""

    case_ids = forms.CharField(
        max_length=100_000,
        label="Add cases",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="case ids, separated by commas or lines (up to 1,000)",
    )

    def ids(self) -> list[str]:
        raw = self.cleaned_data["case_ids"].replace(",", "\n")
        return [v for v in (x.strip() for x in raw.splitlines()) if v]


class MessageForm(forms.Form):
    """A message to the group's open cases now (a broadcast of type now)."""

    text = forms.CharField(
        max_length=10_000,
        label="Text",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Hello {case.name}"}),
        help_text="May use {case.name}, {case.<property>}; sent now to each open case of the group",
    )


class ImportForm(forms.Form):
    file = forms.FileField(label="Add the cases a CSV lists", help_text="a case_id column, or the first column")
