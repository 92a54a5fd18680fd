"""Reading an XForm (as pyxform writes it) into a `casemsg-survey/1` dict: the XLSForm importer's second half.

The XForm's primary instance is walked in document order, so what is computed sits where the author put
it. What XLSForm nests becomes casemsg's flat list:

* **Groups** are flattened: a group's `relevant` is and-ed into every question inside it (nested groups
  too); its label and appearance (`field-list`) are left out — an SMS asks one question at a time.
* **Repeats** are unrolled, each iteration's questions numbered (`child_1_name`, `child_2_name`; nested:
  `visit_1_child_2_name`), and, when the form has an entities sheet (so its answers go to a case), saved as
  numbered properties of the same names. A repeat with a `repeat_count` asks as many iterations as the
  count says, up to its bound: a number, or the largest value the constraint of the integer question it
  names allows (`. <= 10`), or settings `sms_repeat_max`; a count with no such bound is refused. A
  repeat without a count is a loop: after each iteration "Add another child? 1 Yes 2 No", up to
  settings `sms_repeat_max` (10 by default; a loop inside a loop 5, deeper 3). Inside an iteration `${q}`
  is that iteration's answer; from outside, `count(${repeat})` is the number of iterations and `${q}` the
  answers of all the
  iterations asked (for sum(), max(), join(), ...); position(..) is the iteration's number.
* **Computed fields**: `calculate` (its expression), `hidden` (its default), metadata (`start`, `end`,
  `today`, `deviceid`, `phonenumber`, `username`, `email`, ... filled from the session) and a visible
  question with a calculation (said, with its value, as a read-only question).
* **ODK Entities**: an update form's `entity_id` names the field holding the entity's id: that field holds
  the case the survey was sent to, and `instance('<list>')/root/item[name = ${that field}]/p` reads the
  case's property `p`. A form without `entity_id` is a registration: a new case of type `list_name`,
  when `create_if` holds, named by the entity's `label`, a child of the sender's case with settings
  `sms_parent` = `sender`.
* **Choices**: the choices sheet (with its other columns, for `choice_filter`), `select_one_external`
  (the external_choices sheet), `select_one_from_file x.csv` (the CSV attached with the form; the entity
  list of an update form's `entity_id` needs none), `or_other` (pyxform's 'other' choice and its text).

Questions a phone's hardware answers — geo types, photos, audio, video, files, barcodes — are
**refused**: each is reported with its row, and a form accepted with its refused rows keeps them as
empty hidden fields (so what refers to them still reads an empty answer). Anything else outside this
subset is a problem that stops the import, with its row.

(Over 500 lines: one reading of one XForm — the walk, the paths it rewrites and the controls it maps
share the reader's state; the seams are the module's sections.)
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.surveys.definition import ASKED_TYPES, FORMAT, MAX_CHOICES, MAX_QUESTIONS, Problem, SurveyError
from casemsg.surveys.languages import code_for

__all__ = ["Imported", "read_xform"]

_NS = {
    "h": "http://www.w3.org/1999/xhtml",
    "xf": "http://www.w3.org/2002/xforms",
    "jr": "http://openrosa.org/javarosa",
    "odk": "http://www.opendatakit.org/xforms",
    "entities": "http://www.opendatakit.org/xforms/entities",
}
_JR = "{" + _NS["jr"] + "}"
_XF = "{" + _NS["xf"] + "}"
_ODK = "{" + _NS["odk"] + "}"
_SAVETO = "{" + _NS["entities"] + "}saveto"
_ITEXT_REF = re.compile(r"""^\s*jr:itext\(\s*'([^']*)'\s*\)\s*$""")
_MISSING_TRANSLATION = "-"  # pyxform's placeholder for a translation left empty
_BIND_TYPES = {
    "string": "text", "int": "integer", "decimal": "decimal", "date": "date", "time": "time", "dateTime": "datetime",
}  # fmt: skip
# What a phone's hardware answers: refused (and kept as an empty hidden field when the form is accepted).
_DEVICE_BIND_TYPES = {
    "geopoint": "a location (geopoint) is captured by a phone's GPS, not by SMS",
    "geotrace": "a line on a map (geotrace) is drawn on a phone, not sent by SMS",
    "geoshape": "an area on a map (geoshape) is drawn on a phone, not sent by SMS",
    "barcode": "a barcode is scanned by a phone's camera, not sent by SMS",
    "binary": "a photo, audio, video or file is captured on a phone, not sent by SMS",
}
_PRELOAD = {
    ("timestamp", "start"): "start", ("timestamp", "end"): "end", ("date", "today"): "today",
    ("property", "deviceid"): "deviceid", ("property", "phonenumber"): "phonenumber",
    ("property", "username"): "username", ("property", "email"): "email", ("property", "simserial"): "simserial",
    ("property", "subscriberid"): "subscriberid", ("uid", ""): "instanceid",
}  # fmt: skip
DEFAULT_REPEAT_MAX = 10  # iterations of a repeat without a count ("another one?"), unless sms_repeat_max
MAX_REPEAT = 50  # the most iterations sms_repeat_max may allow
_ANOTHER = {  # "Add another {repeat}?" and its choices, by language (English for the others)
    "en": ("Add another {label}?", "Yes", "No"),
    "fr": ("Ajouter un autre élément « {label} » ?", "Oui", "Non"),
    "es": ("¿Agregar otro: {label}?", "Sí", "No"),
    "pt": ("Adicionar outro: {label}?", "Sim", "Não"),
    "sw": ("Ongeza {label} nyingine?", "Ndiyo", "Hapana"),
}
_UPPER_BOUND = re.compile(r"^\s*\.\s*(<=?)\s*(\d+)\s*$|^\s*(\d+)\s*(>=?)\s*\.\s*$")


@dataclass
class Imported:
    """What an XForm becomes: the survey dict (not yet validated), the rows refused because a phone's
    hardware answers them, and which XForm path each question name came from (for row numbers)."""

    survey: dict[str, Any]
    refused: list[Problem]
    paths: dict[str, str]  # question name -> its path below the root ("g/q")


@dataclass
class _Node:
    path: str  # below the root: "g1/age"
    kind: str  # "leaf", "group" or "repeat"
    element: ET.Element
    parent: _Node | None
    children: list[_Node] = field(default_factory=list)
    name: str = ""  # a leaf's or a repeat's flattened name

    @property
    def xpath(self) -> str:
        return self.path

    def repeats(self) -> list[_Node]:
        """The repeats this node is inside, outermost first."""
        out: list[_Node] = []
        node = self.parent
        while node is not None:
            if node.kind == "repeat":
                out.insert(0, node)
            node = node.parent
        return out


@dataclass
class _Repeat:
    """How a repeat is unrolled: its bound, and the condition for iteration i (in its parent's context)."""

    node: _Node
    bound: int
    count: str | None  # the translated count expression; None: a loop ("another one?")
    label: dict[str, str] = field(default_factory=dict)


_Context = dict[str, int]  # repeat path -> iteration number


class _Refused(Exception):
    """An expression that cannot be read (a problem for the question it belongs to)."""


class _MediaChoices(Exception):
    """Choices that are only pictures or sounds: a phone shows them, SMS cannot."""


class _Reader:
    def __init__(
        self,
        xml: ET.Element,
        rows: Mapping[str, int],
        settings: Mapping[str, str],
        attachments: Mapping[str, bytes],
        external: list[dict[str, str]],
        from_sheets: bool,
    ) -> None:
        self.xml = xml
        self.from_sheets = from_sheets
        self.rows = rows
        self.settings = settings
        self.attachments = {k.rsplit("/", 1)[-1].lower(): v for k, v in attachments.items()}
        self.external = external
        self.problems: list[Problem] = []
        self.refused: list[Problem] = []
        self.languages: list[tuple[str, str]] = []  # (pyxform lang, code)
        self.default_language = "en"
        self.itext: dict[str, dict[str, ET.Element]] = {}  # text id -> {code: <value>}
        self.media_texts: set[str] = set()
        self.binds: dict[str, dict[str, str]] = {}  # path below the root -> attributes
        self.setvalues: dict[str, str] = {}  # path -> a dynamic default
        self.controls: dict[str, ET.Element] = {}
        self.body_repeats: dict[str, ET.Element] = {}
        self.groups: dict[str, ET.Element] = {}
        self.instances: dict[str, ET.Element] = {}
        self.root_name = "data"
        self.nodes: dict[str, _Node] = {}
        self.unrolled: dict[str, _Repeat] = {}
        self.questions: list[dict[str, Any]] = []
        self.paths: dict[str, str] = {}
        self.choice_count = 0
        self.entity: dict[str, Any] | None = None
        self.entity_field: str | None = None  # the path holding an update form's entity id
        self.case_fields: dict[str, str] = {}  # case property -> the synthesized field's name
        self.entity_list = ""
        self.tables: dict[str, str] = {}  # pulldata()'s tables: name -> the path that first reads it

    # --- problems ---------------------------------------------------------------------------------
    def problem(self, path: str | None, message: str, *, refused: bool = False) -> None:
        row = self.rows.get(path) if path else None
        question = path.rsplit("/", 1)[-1] if path else None
        found = Problem(question, message, row=row, sheet="survey" if row is not None else None)
        (self.refused if refused else self.problems).append(found)

    # --- the model --------------------------------------------------------------------------------
    def _local(self, xpath: str) -> str:
        prefix = f"/{self.root_name}/"
        return xpath.strip()[len(prefix) :] if xpath.strip().startswith(prefix) else xpath.strip()

    def index(self) -> ET.Element:
        model = self.xml.find("h:head/xf:model", _NS)
        if model is None:
            raise SurveyError([Problem(None, "The XForm has no model.")])
        main: ET.Element | None = None
        for instance in model.findall("xf:instance", _NS):
            if instance.get("id") is None and main is None:
                main = instance
            elif instance.get("id"):
                self.instances[instance.get("id", "")] = instance
        data = None if main is None else next(iter(main), None)
        if data is None:
            raise SurveyError([Problem(None, "The XForm has no primary instance.")])
        self.root_name = data.tag.rsplit("}", 1)[-1]
        for bind in model.findall("xf:bind", _NS):
            self.binds[self._local(bind.get("nodeset", ""))] = dict(bind.attrib)
        for setvalue in model.iter(_XF + "setvalue"):
            if setvalue.get("event", "").startswith("odk-instance-first-load") and setvalue.get("value"):
                self.setvalues[self._local(setvalue.get("ref", ""))] = setvalue.get("value", "")
        body = self.xml.find("h:body", _NS)
        if body is not None:
            for element in body.iter():
                local = element.tag.rsplit("}", 1)[-1]
                if local == "repeat":
                    self.body_repeats[self._local(element.get("nodeset", ""))] = element
                elif local == "group" and element.get("ref"):
                    self.groups[self._local(element.get("ref", ""))] = element
                elif element.get("ref") and local not in ("label", "hint", "value", "output", "setvalue"):
                    self.controls.setdefault(self._local(element.get("ref", "")), element)
                elif local == "setvalue" and element.get("value") and element.get("ref"):
                    self.setvalues.setdefault(self._local(element.get("ref", "")), element.get("value", ""))
        self.read_languages(model)
        return data

    def read_languages(self, model: ET.Element) -> None:
        translations = model.findall("xf:itext/xf:translation", _NS)
        default_setting = self.settings.get("default_language", "")
        unnamed = code_for(default_setting) if default_setting else None
        if not translations:
            self.default_language = unnamed or "en"
            self.languages = [("", self.default_language)]
            return
        default = None
        named: dict[str, str] = {}  # code -> the column language that has it
        # Explicitly named languages first, so their texts win over unnamed columns in the same language.
        for translation in sorted(translations, key=lambda t: t.get("lang") == "default"):
            lang = translation.get("lang", "")
            lang_code = (unnamed or "en") if lang == "default" else code_for(lang)
            if lang_code is None:
                message = (
                    f"The language '{lang}' is not one casemsg knows by name; name its columns like "
                    f"label::{lang} (xx), with its code."
                )
                self.problems.append(Problem(None, message, row=1, sheet="survey"))  # row 1: the column names
                continue
            if lang != "default" and named.setdefault(lang_code, lang) != lang:
                message = (
                    f"The languages '{named[lang_code]}' and '{lang}' are both '{lang_code}'; give them distinct codes "
                    f"like label::{lang} ({lang_code}-XX)."
                )
                self.problems.append(Problem(None, message, row=1, sheet="survey"))
                continue
            if lang_code not in [c for _, c in self.languages]:
                self.languages.append((lang, lang_code))
            if translation.get("default") == "true()" or (lang and lang == default_setting):
                default = lang_code
            for text in translation.iterfind("xf:text", _NS):
                text_id = text.get("id", "")
                for value in text:  # (its <value>s: iterating is far cheaper than findall on 40,000 texts)
                    if value.tag != _XF + "value":
                        continue
                    if value.get("form"):  # image, audio, video, big-image
                        self.media_texts.add(text_id)
                        continue
                    if len(value) == 0 and (value.text or "").strip() in ("", _MISSING_TRANSLATION):
                        continue  # left empty in this language: the unnamed columns' text may stand in
                    self.itext.setdefault(text_id, {}).setdefault(lang_code, value)
        if self.languages:
            self.default_language = default or self.languages[0][1]
            self.languages.sort(key=lambda lang: lang[1] != self.default_language)

    # --- the tree ---------------------------------------------------------------------------------
    def tree(self, data: ET.Element) -> list[_Node]:
        def build(element: ET.Element, prefix: str, parent: _Node | None) -> list[_Node]:
            out: list[_Node] = []
            seen: set[str] = set()
            for child in element:
                local = child.tag.rsplit("}", 1)[-1]
                if local in seen:
                    continue  # a repeat's jr:template twin
                seen.add(local)
                path = f"{prefix}{local}"
                if parent is None and local == "meta":
                    self.read_meta(child)
                    continue
                if local == "meta" and child.find("xf:entity", _NS) is not None:
                    self.problem(
                        prefix.rstrip("/"), "entities from a repeat are not supported: a survey writes one case."
                    )
                    continue
                if path in self.body_repeats or child.get(_JR + "template") is not None:
                    kind = "repeat"
                elif len(child) or path in self.groups:
                    kind = "group"
                else:
                    kind = "leaf"
                node = _Node(path, kind, child, parent)
                self.nodes[path] = node
                if kind != "leaf":
                    node.children = build(child, f"{path}/", node)
                out.append(node)
            return out

        top = build(data, "", None)
        # a leaf is known by its own name, or by its path when two leaves share a name
        leaves = [n for n in self.nodes.values() if n.kind != "group"]
        counts: dict[str, int] = {}
        for n in leaves:
            counts[n.path.rsplit("/", 1)[-1]] = counts.get(n.path.rsplit("/", 1)[-1], 0) + 1
        for n in leaves:
            own = n.path.rsplit("/", 1)[-1]
            n.name = own if counts[own] == 1 else n.path.replace("/", ".")
        return top

    def read_meta(self, meta: ET.Element) -> None:
        entity = meta.find("xf:entity", _NS)
        if entity is None:
            return
        self.entity_list = entity.get("dataset", "")
        binds = {k.removeprefix("meta/entity/"): v for k, v in self.binds.items() if k.startswith("meta/entity/")}
        self.entity = {"list_name": self.entity_list}
        ident = binds.get("@id", {}).get("calculate")
        updates = entity.get("update") == "1" or "@update" in binds
        if updates and ident:
            refs = re.findall(r"\s/" + re.escape(self.root_name) + r"/([\w./-]+)\s?", " " + ident + " ")
            if len(refs) != 1 or ident.strip() != f"/{self.root_name}/{refs[0]}":
                self.problems.append(
                    Problem(None, f"entity_id must be one field (${{field}}), not '{ident.strip()}'.", sheet="entities")
                )
            else:
                self.entity_field = refs[0]
            self.entity["action"] = "update"
            if "@update" in binds and binds["@update"].get("calculate"):
                self.entity["update_if"] = binds["@update"]["calculate"]
        else:
            self.entity["action"] = "create"
            if "@create" in binds and binds["@create"].get("calculate"):
                self.entity["create_if"] = binds["@create"]["calculate"]
            if self.settings.get("sms_parent", "").strip().lower() in ("sender", "yes", "true", "1"):
                self.entity["parent"] = "sender"
        if binds.get("label", {}).get("calculate"):
            self.entity["label"] = binds["label"]["calculate"]

    # --- expressions ------------------------------------------------------------------------------
    def translate(self, expr: str, at: str, ctx: _Context, *, columns: bool = False) -> str:
        """An XForm expression of node `at` (a path below the root) as casemsg writes it: `${name}` for
        each field, in the iteration `ctx` of the repeats around it; raises _Refused with the reason."""
        root = re.escape(self.root_name)
        path = rf"/{root}/[A-Za-z_][\w.-]*(?:/[\w.-]+)*"
        # `../x`, `../../g/x`, and `./x` (a child of the node itself: CHT's `./source` on a group)
        relative = r"(?:current\(\)\s*/\s*)?(?<![\w.])(?:\.\.(?:/\.\.)*|\.)(?:/[A-Za-z_][\w.-]*)+"

        def literal_or(pattern: str, handle: Callable[[re.Match[str]], str], text: str) -> str:
            joined = re.compile(r"""'[^']*'|"[^"]*"|""" + pattern)
            return joined.sub(lambda m: m[0] if m[0][0] in "'\"" else handle(m), text)

        # jr:choice-name(value, ' /data/q '): the question named by its path, in a string
        expr = re.sub(
            r"(choice-name\(.*?,\s*)(['\"])\s*(" + path + r")\s*\2",
            lambda m: f"{m[1]}{m[2]}{self.name_of(self._local(m[3]), at, ctx, single=True)}{m[2]}",
            expr,
        )
        expr = literal_or(r"position\(\s*(?:current\(\)\s*/\s*)?\.\.\s*\)", lambda m: self.position(at, ctx), expr)
        expr = literal_or(
            r"indexed-repeat\(\s*(" + path + r")\s*,\s*(" + path + r")\s*,\s*(\d+)\s*\)",
            lambda m: self.indexed(m, at, ctx),
            expr,
        )
        expr = literal_or(
            r"instance\(\s*'([^']+)'\s*\)/root/item\[\s*name\s*=\s*(" + path + "|" + relative + r")\s*\]/([\w.-]+)",
            lambda m: self.lookup(m, at, ctx),
            expr,
        )
        # CHT's forms read the contact's summary (`instance('contact-summary')/context/edd`): the case's property
        expr = literal_or(
            r"instance\(\s*'contact-summary'\s*\)/context/([\w.-]+)",
            lambda m: f"${{{self.case_field(m[1])}}}",
            expr,
        )
        expr = literal_or(r"count\(\s*(" + path + r")\s*\)", lambda m: self.count(m, at, ctx), expr)
        expr = literal_or(r"\s?(" + path + "|" + relative + r")\s?", lambda m: self.reference(m[1], at, ctx), expr)
        if not columns:
            # a bare name left (`coalesce(x, NULL)`) is a path to a child the node does not have: empty, as
            # XPath reads it (in a choice filter it is a column of the choices, and stays)
            expr = literal_or(
                r"(?<![\w${}./@:-])([A-Za-z_][\w.-]*)(?![\w.-]|\s*\(|:)",
                lambda m: m[0] if m[1] in ("and", "or", "div", "mod") else "''",
                expr,
            )
        for table in re.findall(r"""pulldata\(\s*['"]([^'"]+)['"]""", expr):
            self.tables.setdefault(table, at)
        if "instance(" in expr:
            raise _Refused(
                "instance() reads another list; casemsg reads the case of an update form's entity list "
                f"(instance('{self.entity_list or 'list'}')/root/item[name = ${{entity id}}]/property) only"
            )
        return expr.strip()

    def resolve(self, text: str, at: str) -> str:
        """A path as written (absolute, or relative to node `at`) as a path below the root."""
        text = re.sub(r"\s", "", text)
        if text.startswith("/"):
            return self._local(text)
        text = re.sub(r"^current\(\)/", "", text)
        base = at.split("/")
        for part in text.split("/"):
            if part == "..":
                base = base[:-1]
            elif part not in (".", ""):
                base.append(part)
        return "/".join(base)

    def iterations(self, node: _Node, ctx: _Context) -> list[_Context]:
        """Every combination of iterations of the repeats around `node` not fixed by ctx."""
        free = [r for r in node.repeats() if r.path not in ctx]
        if not free:
            return [ctx]
        ranges = [range(1, self.unrolled[r.path].bound + 1) if r.path in self.unrolled else range(1, 2) for r in free]
        return [{**ctx, **{r.path: i for r, i in zip(free, combo, strict=True)}} for combo in product(*ranges)]

    def unrolled_name(self, node: _Node, ctx: _Context) -> str:
        repeats = node.repeats()
        if not repeats:
            return node.name
        parts = [f"{r.name}_{ctx.get(r.path, 1)}" for r in repeats]
        return "_".join([*parts, node.path.rsplit("/", 1)[-1]])

    def name_of(self, path: str, at: str, ctx: _Context, *, single: bool = False) -> str:
        node = self.nodes.get(path)
        if node is None or node.kind != "leaf":
            raise _Refused(f"it refers to '{path}', which is not a question of the form")
        names = [self.unrolled_name(node, c) for c in self.iterations(node, ctx)]
        if single and len(names) != 1:
            raise _Refused(f"it refers to '{path}' in a repeat from outside it")
        return names[0]

    def reference(self, text: str, at: str, ctx: _Context) -> str:
        path = self.resolve(text, at)
        if path == self.entity_field:
            return f"${{{self.nodes[path].name}}}" if path in self.nodes else "''"
        if path == "meta/instanceID":
            return "${instanceID}" if self.add_field("instanceID", "instanceid") else "''"
        node = self.nodes.get(path)
        if node is None:
            # a node the form does not have (CHT's inputs/meta/location, which its app adds at run time): an
            # empty node-set, as XPath reads it — pyxform has already checked every ${name} the author wrote
            return "''"
        if node.kind == "group":
            raise _Refused(f"it refers to the group '{path}' as a value")
        if node.kind == "repeat":
            raise _Refused(f"it refers to the repeat '{path}' as a value (count(${{{node.name}}}) counts it)")
        names = [self.unrolled_name(node, c) for c in self.iterations(node, ctx)]
        if len(names) == 1:
            return f"${{{names[0]}}}"
        return "(" + " | ".join(f"${{{n}}}" for n in names) + ")"

    def position(self, at: str, ctx: _Context) -> str:
        node = self.nodes.get(at)
        repeats = node.repeats() if node is not None else []
        if node is not None and node.kind == "repeat":
            repeats = [*repeats, node]
        if not repeats:
            raise _Refused("position(..) is only meaningful inside a repeat")
        return str(ctx.get(repeats[-1].path, 1))

    def indexed(self, m: re.Match[str], at: str, ctx: _Context) -> str:
        node, repeat = self.nodes.get(self._local(m[1])), self.nodes.get(self._local(m[2]))
        if node is None or repeat is None or repeat.kind != "repeat":
            raise _Refused("indexed-repeat() must name a question and its repeat")
        return f"${{{self.unrolled_name(node, {**ctx, repeat.path: int(m[3])})}}}"

    def count(self, m: re.Match[str], at: str, ctx: _Context) -> str:
        node = self.nodes.get(self._local(m[1]))
        if node is None or node.kind != "repeat":
            return m[0].replace(m[1], self.reference(m[1], at, ctx))
        info = self.unrolled.get(node.path)
        if info is None:
            raise _Refused(f"it counts the repeat '{node.path}' before it is asked")
        if info.count is not None:
            return f"min(coalesce({info.count}, 0), {info.bound})"
        another = [f"(${{{self.another_name(node, ctx, i)}}} = 'yes')" for i in range(1, info.bound)]
        return "(" + " + ".join(["1", *another]) + ")"

    def lookup(self, m: re.Match[str], at: str, ctx: _Context) -> str:
        list_name, key, prop = m[1], self.resolve(m[2], at), m[3]
        if list_name != self.entity_list or key != self.entity_field or self.entity_field is None:
            raise _Refused(
                f"instance('{list_name}') is read by name = {m[2].strip()}; casemsg reads only the case of an update "
                f"form (instance('{self.entity_list or 'list'}')/root/item[name = ${{entity id}}]/property)"
            )
        if prop.startswith("__"):
            return "''"  # the entity's version fields: the case has none
        return f"${{{self.case_field(prop)}}}"

    def case_field(self, prop: str) -> str:
        if prop not in self.case_fields:
            name = f"case.{prop}" if prop != "label" else "case.name"
            self.case_fields[prop] = name
        return self.case_fields[prop]

    def add_field(self, name: str, kind: str) -> bool:
        if any(q["name"] == name for q in self.questions):
            return True
        self.questions.insert(0, {"name": name, "type": "metadata", "metadata": kind})
        return True

    def another_name(self, repeat: _Node, ctx: _Context, i: int) -> str:
        parts = [f"{r.name}_{ctx.get(r.path, 1)}" for r in repeat.repeats()]
        return "_".join([*parts, f"{repeat.name}_another_{i}"])

    # --- texts --------------------------------------------------------------------------------------
    def text_of(self, element: ET.Element, at: str, ctx: _Context) -> str:
        """Text with pyxform's `<output value=" /data/q "/>` turned back into `${q}`."""
        parts = [element.text or ""]
        for child in element:
            if child.tag == _XF + "output":
                value = self.translate(child.get("value", ""), at, ctx)
                # a label says one answer: `${q}`; anything else (all the iterations of a repeat) says nothing
                parts.append(value if re.fullmatch(r"\$\{[^}]*\}", value) else "")
            parts.append(child.tail or "")
        return " ".join("".join(parts).split())

    def texts(self, element: ET.Element | None, at: str, ctx: _Context) -> dict[str, str]:
        """Texts of a <label>, <hint> or a message attribute's itext: {code: text}."""
        if element is None:
            return {}
        ref = element.get("ref")
        if ref is None:
            text = self.text_of(element, at, ctx)
            return {self.default_language: text} if text else {}
        m = _ITEXT_REF.match(ref)
        return self.itext_texts(m[1], at, ctx) if m else {}

    def itext_texts(self, text_id: str, at: str, ctx: _Context) -> dict[str, str]:
        out: dict[str, str] = {}
        for code, value in self.itext.get(text_id, {}).items():
            text = self.text_of(value, at, ctx)
            if text and text != _MISSING_TRANSLATION:
                out[code] = text
        if out and self.default_language not in out and not text_id.endswith(":hint"):
            # written in other languages only: the default language says the first of them (as ODK shows "-")
            out[self.default_language] = next(out[c] for _, c in self.languages if c in out)
        return out

    def message(self, attribute: str | None, at: str, ctx: _Context) -> dict[str, str]:
        if not attribute:
            return {}
        m = _ITEXT_REF.match(attribute)
        return self.itext_texts(m[1], at, ctx) if m else {self.default_language: attribute.strip()}

    # --- choices ------------------------------------------------------------------------------------
    def choices(
        self, path: str, control: ET.Element, at: str, ctx: _Context
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The choices of a select and its choice filter (translated), from the choices sheet, a CSV
        attached with the form, or the external_choices sheet."""
        query = control.get("query")
        itemset = control.find("xf:itemset", _NS)
        if query is not None:  # select_one_external: the external_choices sheet
            m = re.match(r"^\s*instance\('([^']+)'\)/root/item(.*)$", query, re.S)
            if m is None:
                raise _Refused("its external choices are not read from a list")
            rows = [r for r in self.external if r.get("list_name") == m[1]]
            items = [self.item_from_row(r) for r in rows]
            predicate = m[2].strip()
        elif itemset is not None:
            m = re.match(r"^\s*instance\('([^']+)'\)/root/item(.*)$", itemset.get("nodeset", ""), re.S)
            if m is None:
                raise _Refused("its choices are not read from a list")
            instance = self.instances.get(m[1])
            value_element, label_element = itemset.find("xf:value", _NS), itemset.find("xf:label", _NS)
            value_ref = value_element.get("ref", "name") if value_element is not None else "name"
            label_ref = label_element.get("ref", "label") if label_element is not None else "label"
            if instance is None:
                raise _Refused(f"its choices come from '{m[1]}', which the form does not declare")
            if instance.get("src"):
                items = self.file_items(instance.get("src", ""), value_ref, label_ref)
            else:
                items = self.sheet_items(instance, value_ref, label_ref, at, ctx)
            predicate = m[2].strip()
        else:
            items = [
                {
                    "name": (item.findtext("xf:value", default="", namespaces=_NS) or "").strip(),
                    "label": self.texts(item.find("xf:label", _NS), at, ctx),
                }
                for item in control.findall("xf:item", _NS)
            ]
            predicate = ""
        self.choice_count += len(items)
        if self.choice_count > MAX_CHOICES:
            raise InputError(
                errors.TOO_MANY_QUESTIONS,
                f"The survey's questions have more than {MAX_CHOICES:,} choices in all (a choice list is "
                f"counted once for every question that uses it).",
                422,
            )
        choice_filter = None
        if predicate:
            if not (predicate.startswith("[") and predicate.endswith("]")):
                raise _Refused("its choice list has a path casemsg cannot read")
            choice_filter = self.translate(predicate[1:-1], at, ctx, columns=True)
        return items, choice_filter

    def sheet_items(
        self, instance: ET.Element, value_ref: str, label_ref: str, at: str, ctx: _Context
    ) -> list[dict[str, Any]]:
        text_ids = {i.findtext("xf:itextId", default="", namespaces=_NS).strip() for i in instance.iter()}
        if text_ids & self.media_texts and not any(self.itext.get(t) for t in text_ids):
            raise _MediaChoices
        items = []
        for item in instance.iterfind("xf:root/xf:item", _NS):
            fields = {c.tag.rsplit("}", 1)[-1]: (c.text or "").strip() for c in item}
            if "itextId" in fields and label_ref.replace(" ", "") == "jr:itext(itextId)":
                label = self.itext_texts(fields["itextId"], at, ctx)
            else:
                label = {self.default_language: fields.get(label_ref, "")} if fields.get(label_ref) else {}
            columns = {k: v for k, v in fields.items() if k not in ("itextId", value_ref, "label") and v != ""}
            items.append({"name": fields.get(value_ref, ""), "label": label, "columns": columns})
        return items

    def item_from_row(self, row: Mapping[str, str], value: str = "name", label: str = "label") -> dict[str, Any]:
        labels: dict[str, str] = {}
        for key, text in row.items():
            if key == label and text:
                labels.setdefault(self.default_language, text)
            elif key.startswith(f"{label}::") and text:
                code = code_for(key.split("::", 1)[1])
                if code is not None:
                    labels[code] = text
        skip = {value, "list_name"} | {k for k in row if k == label or k.startswith(f"{label}::")}
        columns = {k: v for k, v in row.items() if k not in skip and v != "" and re.match(r"^[A-Za-z_][\w-]*$", k)}
        return {"name": row.get(value, ""), "label": labels, "columns": columns}

    def file_items(self, src: str, value_ref: str, label_ref: str) -> list[dict[str, Any]]:
        name = src.rsplit("/", 1)[-1]
        if not name.lower().endswith(".csv"):
            raise _Refused(f"its choices are in {name}; casemsg reads choices from a CSV file attached with the form")
        data = self.attachments.get(name.lower())
        if data is None:
            raise _Refused(f"its choices are in {name}: attach {name} when you import the form")
        rows = read_csv_attachment(name, data)
        return [self.item_from_row(r, value_ref, label_ref) for r in rows]

    # --- the walk ---------------------------------------------------------------------------------------
    def walk(self, nodes: list[_Node], conditions: list[str], ctx: _Context) -> None:
        for node in nodes:
            try:
                own = self.binds.get(node.path, {}).get("relevant")
                relevant = [*conditions, self.translate(own, node.path, ctx)] if own else conditions
            except _Refused as why:
                self.problem(node.path, f"relevant: {why}.")
                continue
            if node.kind == "group":
                self.walk(node.children, relevant, ctx)
            elif node.kind == "repeat":
                self.repeat(node, relevant, ctx)
            else:
                self.leaf(node, relevant, ctx)

    def repeat(self, node: _Node, conditions: list[str], ctx: _Context) -> None:
        body = self.body_repeats.get(node.path)
        count = body.get(_JR + "count") if body is not None else None
        limit = self.settings.get("sms_repeat_max", "").strip()
        cap = int(limit) if limit.isdigit() and 0 < int(limit) <= MAX_REPEAT else None
        if limit and cap is None:
            self.problem(None, f"settings sms_repeat_max must be a whole number from 1 to {MAX_REPEAT}.")
        group = self.groups.get(node.path)
        label = self.texts(group.find("xf:label", _NS) if group is not None else None, node.path, ctx)
        if count:
            try:
                translated = self.translate(count, node.path, ctx)
            except _Refused as why:
                self.problem(node.path, f"repeat_count: {why}.")
                return
            bound = self.bound(translated) or cap
            if bound is None:
                self.problem(
                    node.path,
                    f"the repeat_count '{translated}' has no upper bound, so the number of questions is unknown; "
                    "give it a number, refer to an integer question whose constraint sets a maximum "
                    "(. <= 10), or set sms_repeat_max on the settings sheet.",
                )
                return
            info = _Repeat(node, min(bound, MAX_REPEAT), translated, label)
        else:
            # a loop inside a loop asks fewer by default (5, then 3) so that nested rosters stay within the
            # question limit; sms_repeat_max sets every loop's
            depth = len(ctx)
            info = _Repeat(node, cap or (DEFAULT_REPEAT_MAX, 5, 3)[min(depth, 2)], None, label)
        self.unrolled[node.path] = info
        for i in range(1, info.bound + 1):
            inner = {**ctx, node.path: i}
            if info.count is not None:
                reached = [*conditions, f"({info.count}) >= {i}"]
            elif i == 1:
                reached = list(conditions)
            else:
                reached = [*conditions, f"${{{self.another_name(node, ctx, i - 1)}}} = 'yes'"]
            self.walk(node.children, reached, inner)
            if info.count is None and i < info.bound:
                self.add_another(node, info, reached, ctx, i)

    def bound(self, count: str) -> int | None:
        """The largest value a repeat_count can take: a number, or an integer question's constraint maximum."""
        if count.isdigit():
            return int(count)
        m = re.fullmatch(r"\$\{([^}]+)\}", count)
        question = next((q for q in self.questions if m and q["name"] == m[1]), None)
        if question is not None and question["type"] == "calculate" and question["calculation"].strip().isdigit():
            return int(question["calculation"])  # a number as repeat_count: pyxform's generated <repeat>_count
        if question is None or question["type"] != "integer" or not question.get("constraint"):
            return None
        if " or " in question["constraint"]:
            return None
        bounds = []
        for part in re.split(r"\band\b", question["constraint"]):
            if b := _UPPER_BOUND.match(part):
                value = int(b[2] or b[3])
                bounds.append(value - 1 if (b[1] or b[4]) in ("<", ">") else value)
        return min(bounds) if bounds else None

    def add_another(self, node: _Node, info: _Repeat, reached: list[str], ctx: _Context, i: int) -> None:
        label, yes, no = {}, {}, {}
        for _lang, code in self.languages:
            template, yes_text, no_text = _ANOTHER.get(code.split("-")[0], _ANOTHER["en"])
            name = info.label.get(code) or info.label.get(self.default_language) or node.name
            label[code], yes[code], no[code] = template.format(label=name), yes_text, no_text
        question = {
            "name": self.another_name(node, ctx, i),
            "type": "select_one",
            "label": label,
            "choices": [{"name": "yes", "label": yes}, {"name": "no", "label": no}],
            "required": True,
        }
        if reached:
            question["relevant"] = _all(reached)
        self.add(question, node.path)

    def add(self, question: dict[str, Any], path: str) -> None:
        self.questions.append(question)
        self.paths[question["name"]] = path
        if len(self.questions) > MAX_QUESTIONS:
            raise InputError(
                errors.TOO_MANY_QUESTIONS,
                f"The survey has more than {MAX_QUESTIONS:,} questions once its repeats are unrolled; ask fewer "
                "iterations (settings sms_repeat_max) or fewer questions in them.",
                422,
            )

    def leaf(self, node: _Node, conditions: list[str], ctx: _Context) -> None:
        name = self.unrolled_name(node, ctx)
        try:
            question = self.question(node, name, ctx)
        except _Refused as why:
            self.problem(node.path, f"{why}.")
            return
        if question is None:
            return
        if conditions:
            question["relevant"] = _all(conditions)
        if node.repeats() and self.entity is not None and question["type"] in ASKED_TYPES:
            question.setdefault("save_to", re.sub(r"[^A-Za-z0-9_-]", "_", name))
        self.add(question, node.path)

    def question(self, node: _Node, name: str, ctx: _Context) -> dict[str, Any] | None:
        path = node.path
        bind = self.binds.get(path, {})
        control = self.controls.get(path)
        bind_type = bind.get("type", "string")
        out: dict[str, Any] = {"name": name}
        saved = {"save_to": bind[_SAVETO]} if bind.get(_SAVETO) else {}
        if path == self.entity_field:
            return {**out, "type": "metadata", "metadata": "case_id", **saved}
        preload = bind.get(_JR + "preload")
        if preload:
            kind = _PRELOAD.get((preload, bind.get(_JR + "preloadParams", "")))
            return {**out, "type": "metadata" if kind else "hidden", **({"metadata": kind} if kind else {}), **saved}
        if control is None:
            if "calculate" in bind:
                # `.` in a calculation is the field's own value before it: its default (CHT's `if(…, …, .)`)
                before = "'" + (node.element.text or "").strip().replace("'", "") + "'"
                calculation = re.sub(r"(?<![\w.)\]'\"/])\.(?![\w./])", before, bind["calculate"])
                out.update(type="calculate", calculation=self.translate(calculation, path, ctx))
            else:
                # a hidden field, or what a phone's sensors fill in (start-geopoint, background-audio): empty
                out.update(type="hidden")
                if (node.element.text or "").strip():
                    out["default"] = (node.element.text or "").strip()
            if self.setvalues.get(path):
                out["default_expression"] = self.translate(self.setvalues[path], path, ctx)
            if bind.get(_SAVETO):
                out["save_to"] = bind[_SAVETO]
            return out
        local = control.tag.rsplit("}", 1)[-1]
        readonly = bind.get("readonly", "false()")
        if local == "upload" or bind_type in _DEVICE_BIND_TYPES:
            reason = _DEVICE_BIND_TYPES["binary" if local == "upload" else bind_type]
            self.problem(path, reason + ".", refused=True)
            return {**out, "type": "hidden"}
        if local == "select1":
            qtype = "select_one"
        elif local == "select":
            qtype = "select_multiple"
        elif local == "rank" and control.tag.startswith(_ODK):
            qtype = "rank"
        elif local == "trigger":
            qtype = "acknowledge"
        elif local == "range":
            qtype = "integer" if bind_type == "int" else "decimal"
        elif local == "input" and control.get("query") is not None:
            qtype = "select_one"
        elif local == "input" and bind_type in _BIND_TYPES:
            is_note = readonly == "true()" and bind_type == "string" and "calculate" not in bind
            qtype = "note" if is_note else _BIND_TYPES[bind_type]
        else:
            raise _Refused(f"the question type ({local} of {bind_type}) is not supported in SMS surveys")
        label_element = control.find("xf:label", _NS)
        label = self.texts(label_element, path, ctx)
        if not label and label_element is not None and self.is_media(label_element):
            self.problem(path, "its label is only an image, audio or video, which a phone shows and SMS cannot send.",
                         refused=True)  # fmt: skip
            return {**out, "type": "hidden"}
        out.update(type=qtype, label=label)
        hint = self.texts(control.find("xf:hint", _NS), path, ctx)
        if hint:
            out["hint"] = hint
        if qtype in ("select_one", "select_multiple", "rank"):
            try:
                out["choices"], choice_filter = self.choices(path, control, path, ctx)
            except _MediaChoices:
                self.problem(path, "its choices are only images, audio or video, which a phone shows and SMS cannot "
                             "send.", refused=True)  # fmt: skip
                return {"name": name, "type": "hidden"}
            if choice_filter:
                out["choice_filter"] = choice_filter
        if qtype == "note":
            return out
        self.rules(out, bind, path, ctx, readonly)
        if local == "range":
            limits = [f". >= {control.get('start')}"] if control.get("start") else []
            limits += [f". <= {control.get('end')}"] if control.get("end") else []
            if limits:
                own = out.get("constraint")
                out["constraint"] = " and ".join([*limits, *([f"({own})"] if own else [])])
        default = (node.element.text or "").strip()
        if default and qtype != "acknowledge":
            out["default"] = default
        if "calculate" in bind:  # a visible question with a calculation: said, with its value
            out["default_expression"] = self.translate(bind["calculate"], path, ctx)
            out["read_only"] = True
        elif self.setvalues.get(path):
            out["default_expression"] = self.translate(self.setvalues[path], path, ctx)
        if bind.get(_SAVETO):
            out["save_to"] = bind[_SAVETO]
        return out

    def rules(self, out: dict[str, Any], bind: Mapping[str, str], path: str, ctx: _Context, readonly: str) -> None:
        required = bind.get("required", "false()")
        if required == "true()":
            out["required"] = True
        elif required != "false()":
            out["required"] = self.translate(required, path, ctx)
        if readonly == "true()":
            out["read_only"] = True
        elif readonly != "false()":
            out["read_only"] = self.translate(readonly, path, ctx)
        if bind.get("constraint"):
            # `${age} < 120` in age's own constraint is `. < 120` (pyxform writes both as the node's path)
            own = re.compile(r"\$\{" + re.escape(out["name"]) + r"\}")
            out["constraint"] = own.sub(".", self.translate(bind["constraint"], path, ctx))
            if message := self.message(bind.get(_JR + "constraintMsg"), path, ctx):
                out["constraint_message"] = message  # (a message without a constraint is never said: ODK ignores it)
        if message := self.message(bind.get(_JR + "requiredMsg"), path, ctx):
            out["required_message"] = message

    def is_media(self, element: ET.Element) -> bool:
        m = _ITEXT_REF.match(element.get("ref", ""))
        return bool(m and m[1] in self.media_texts)

    # --- the survey -------------------------------------------------------------------------------------
    def survey(self, data: ET.Element) -> dict[str, Any]:
        top = self.tree(data)
        self.walk(top, [], {})
        for prop, name in reversed(list(self.case_fields.items())):
            field_: dict[str, Any] = {"name": name, "type": "metadata"}
            field_.update(
                {"metadata": "case_name"} if prop == "label" else {"metadata": "case_property", "property": prop}
            )
            self.questions.insert(0, field_)
            self.paths.setdefault(name, "")
        if self.entity is not None:
            for key in ("label", "create_if", "update_if"):
                if self.entity.get(key):
                    try:
                        self.entity[key] = self.translate(self.entity[key], "meta/entity", {})
                    except _Refused as why:
                        self.problems.append(Problem(None, f"entity {key}: {why}.", sheet="entities"))
                        self.entity.pop(key)
        keyword = self.settings.get("sms_keyword") or None
        title = self.xml.findtext("h:head/h:title", default="", namespaces=_NS).strip()
        survey: dict[str, Any] = {"format": FORMAT, "name": title or data.get("id") or self.root_name}
        if self.settings.get("form_id") or self.settings.get("id_string") or not self.from_sheets:
            # Without a form_id setting pyxform makes one up from the file name; that is not the author's.
            if data.get("id"):
                survey["form_id"] = data.get("id")
        if data.get("version"):
            survey["version"] = data.get("version")
        survey["default_language"] = self.default_language
        survey["languages"] = [code for _, code in self.languages]
        settings: dict[str, Any] = {"keyword": keyword}
        for column, key in (("sms_progress", "progress"), ("sms_prefill", "prefill")):
            if self.settings.get(column, "").strip().lower() in ("yes", "true", "1"):
                settings[key] = True
        if self.settings.get("sms_skip_word"):
            settings["skip_word"] = self.settings["sms_skip_word"].strip()
        survey["settings"] = settings
        if self.entity is not None:
            survey["entity"] = self.entity
        tables = {}
        for table, at in self.tables.items():
            attached = self.attachments.get(f"{table.lower()}.csv")
            if attached is None:
                self.problem(at, f"pulldata() reads {table}.csv: attach {table}.csv when you import the form.")
                continue
            try:
                tables[table] = read_csv_attachment(f"{table}.csv", attached, choices=False)
            except _Refused as why:
                self.problem(at, f"{why}.")
        if tables:
            survey["tables"] = tables
        for question in self.questions:
            _fill_default_language(question, self.default_language)
        survey["questions"] = self.questions
        return survey


def _fill_default_language(question: dict[str, Any], default: str) -> None:
    """A label or choice without text in the default language says the first language's text it has,
    else (a choice) its name — as ODK Collect shows a form whose translation is incomplete."""

    def fill(texts: dict[str, str], fallback: str = "") -> None:
        if not texts.get(default, "").strip():
            texts[default] = next((t for t in texts.values() if t.strip()), fallback)

    for key in ("label", "hint", "constraint_message", "required_message"):
        if question.get(key):
            fill(question[key])
    for choice in question.get("choices") or []:
        label = choice.setdefault("label", {})
        fill(label, str(choice.get("name", "")))


def _all(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else " and ".join(f"({c})" for c in conditions)


MAX_ATTACHMENT_ROWS = MAX_CHOICES


def read_csv_attachment(name: str, data: bytes, *, choices: bool = True) -> list[dict[str, str]]:
    """The rows of a CSV attached with a form: choices (a header with `name` and `label` columns), or a
    table for pulldata()."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Refused(f"{name} is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    if choices and "name" not in header:
        raise _Refused(f"{name} has no 'name' column")
    rows: list[dict[str, str]] = []
    for record in reader:
        if not any(c.strip() for c in record):
            continue
        rows.append({h: v.strip() for h, v in zip(header, record, strict=False) if h})
        if len(rows) > MAX_ATTACHMENT_ROWS:
            raise InputError(errors.TOO_MANY_QUESTIONS, f"{name} has more than {MAX_ATTACHMENT_ROWS:,} choices.", 422)
    return rows


def read_xform(
    xform: str,
    *,
    rows: Mapping[str, int] | None = None,
    settings: Mapping[str, str] | None = None,
    attachments: Mapping[str, bytes] | None = None,
    external: list[dict[str, str]] | None = None,
) -> Imported:
    """Read an XForm (as pyxform writes it) into a survey dict, not yet validated or canonical.

    `rows` maps question paths below the root ("q", or "group/q") to survey sheet rows, for the problems;
    `settings` is the XLSForm settings row (sms_* columns, which pyxform leaves out of the XForm);
    `attachments` the files attached with the form (name -> bytes: CSVs of choices); `external` the
    external_choices sheet's rows. Raises SurveyError for anything outside the supported subset except
    what a phone's hardware answers: those rows are in `Imported.refused`.
    """
    reader = _Reader(
        ET.fromstring(xform), rows or {}, settings or {}, attachments or {}, external or [], settings is not None
    )
    data = reader.index()
    survey = reader.survey(data)
    if reader.problems:
        raise SurveyError(reader.problems + reader.refused)
    return Imported(survey, reader.refused, reader.paths)
