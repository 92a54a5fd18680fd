"""`casemsg project`: create projects; issue (with scopes), list and revoke their API keys; show and change
their settings and the texts casemsg sends (as the installation's command line: a change that weakens a
legal rule is allowed here, and recorded in the audit log like every change); show the audit log (`--csv`
for a spreadsheet); export and import every translation as one file (`translations`)."""

import getpass
import json
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from casemsg.commands import lookup
from casemsg.commands.management.commands.demo import DEMO_KEY_FILE
from casemsg.consent import texts
from casemsg.core import actor, wallclock
from casemsg.core.errors import InputError
from casemsg.projects import queries, services
from casemsg.projects.models import DEFAULT_SCOPES, SCOPES, Project
from casemsg.translations import services as translation_files

_project = lookup.project

# `project key` without --new: a Twilio or RapidPro user expects to see the key again, which a hash cannot give.
_NO_SHOW = (
    "API keys are stored hashed, so a key is shown only once, when it is issued; nothing can show it again.\n"
    "  List the project's keys (prefix, name, scopes, created, last used): casemsg project keys {slug}\n"
    "  Issue a new key (shown once):                 casemsg project key {slug} --new [--name WHAT-FOR]\n"
    "  The demo project's key: {demo_file} (written by `casemsg demo`, which `make run` runs)."
)


class Command(BaseCommand):
    help = "Create projects; issue, list and revoke their API keys; show and change their settings; the audit log."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        c = sub.add_parser("create", help="create a project and print its API key")
        c.add_argument("slug")
        c.add_argument("--name", default="")
        c.add_argument("--time-zone", default="UTC")
        c.add_argument(
            "--country",
            default=None,
            help="ISO 3166 code of local numbers (default: the time zone's, KE for Africa/Nairobi; '' for none)",
        )
        c.add_argument("--language", default="en")
        c.add_argument("--languages", default="", help="comma-separated SMS languages")
        c.add_argument("--json", action="store_true")
        k = sub.add_parser("key", help="issue another API key for a project with --new (shown once)")
        k.add_argument("slug")
        k.add_argument(
            "--new",
            action="store_true",
            help="issue a new key; without it the command says how to find the keys (they are stored hashed)",
        )
        k.add_argument("--name", default="", help="what the key is for")
        k.add_argument(
            "--scope",
            action="append",
            choices=SCOPES,
            dest="scopes",
            help=f"what the key may do; repeat for several (default: {' '.join(DEFAULT_SCOPES)})",
        )
        k.add_argument("--json", action="store_true")
        ks = sub.add_parser("keys", help="list a project's API keys (never the keys themselves)")
        ks.add_argument("slug")
        ks.add_argument("--json", action="store_true")
        r = sub.add_parser("revoke-key", help="revoke one of a project's API keys (by the id `keys` lists)")
        r.add_argument("slug")
        r.add_argument("key_id", type=int)
        st = sub.add_parser("settings", help="show a project's settings, or change them (--set NAME=JSON)")
        st.add_argument("slug")
        st.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help='a setting and its JSON value, e.g. --set consent_regions=\'["US","PR"]\' (repeat for several)',
        )
        au = sub.add_parser("audit", help="show who changed which setting or API key, newest first")
        au.add_argument("slug")
        au.add_argument("--setting", default="", help="one setting's entries (api_key: the keys')")
        au.add_argument("--limit", type=int, default=50)
        au.add_argument("--csv", action="store_true", help="every entry, as CSV (safe in a spreadsheet)")
        au.add_argument("--json", action="store_true")
        sub.add_parser("list", help="list projects")
        tx = sub.add_parser("texts", help="show the texts casemsg sends in each language, or change one (--set)")
        tx.add_argument("slug")
        tx.add_argument(
            "--set",
            nargs=3,
            action="append",
            default=[],
            metavar=("KEY", "LANG", "TEXT"),
            help="the project's own text for KEY in LANG (repeat for several); '' sends nothing where allowed",
        )
        tx.add_argument(
            "--reset",
            nargs=2,
            action="append",
            default=[],
            metavar=("KEY", "LANG"),
            help="remove the project's own text: the fallback applies again",
        )
        tx.add_argument("--json", action="store_true")
        tr = sub.add_parser("translations", help="export every translation as one CSV/.xlsx, or import one back")
        tr.add_argument("slug")
        tr.add_argument("--export", metavar="FILE", help="write the file (.xlsx by its name, else CSV; - for stdout)")
        tr.add_argument("--import", dest="import_file", metavar="FILE", help="apply a filled-in file, all or nothing")
        tr.add_argument("--preview", action="store_true", help="with --import: show what it changes, change nothing")

    def handle(self, *args: Any, **o: Any) -> None:
        try:
            with actor.acting_as("cli", f"command line ({getpass.getuser()})"):
                self._handle(o)
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e

    def _handle(self, o: dict[str, Any]) -> None:
        if o["action"] == "list":
            for p in queries.projects():
                self.stdout.write(f"{p.slug}\t{p.name}\t{p.default_time_zone}\t{','.join(p.sms_languages)}")
            return
        if o["action"] == "settings":
            self._settings(_project(o["slug"]), o["set"])
            return
        if o["action"] == "audit":
            self._audit(o)
            return
        if o["action"] == "texts":
            self._texts(_project(o["slug"]), o)
            return
        if o["action"] == "translations":
            self._translations(_project(o["slug"]), o)
            return
        if o["action"] == "keys":
            keyed = _project(o["slug"])
            zone = keyed.default_time_zone  # times on the project's clock, labelled ("… 14:05 EAT")
            rows = list(services.list_keys(keyed))
            if o["json"]:
                out = [
                    {
                        "id": r.pk,
                        "prefix": r.prefix,
                        "name": r.name,
                        "scopes": list(r.scopes or []),
                        "created_on": r.created_on.isoformat(),
                        "revoked": r.revoked,
                        "last_used_on": r.last_used_on.isoformat() if r.last_used_on else None,
                    }
                    for r in rows
                ]
                self.stdout.write(json.dumps(out))
                return
            for r in rows:
                state = (
                    f"revoked {wallclock.shown(r.revoked_on, zone)}"
                    if r.revoked and r.revoked_on
                    else ("revoked" if r.revoked else "active")
                )
                scopes = ",".join(r.scopes or [])
                used = wallclock.shown(r.last_used_on, zone, empty="never")
                created = wallclock.shown(r.created_on, zone)
                self.stdout.write(f"{r.pk}\t{r.prefix}…\t{state}\t{scopes}\t{created}\t{used}\t{r.name}")
            return
        if o["action"] == "revoke-key":
            row = services.revoke_key(_project(o["slug"]), o["key_id"])
            self.stdout.write(f"Key {row.pk} ({row.prefix}…) is revoked.")
            return
        if o["action"] == "create":
            langs = [x.strip() for x in o["languages"].split(",") if x.strip()]
            project, key = services.create_project(
                o["slug"], o["name"], o["time_zone"], o["language"], langs, country=o["country"]
            )
            scope_list = list(SCOPES)  # a project's first key has every scope
        else:
            project = _project(o["slug"])
            if not o["new"]:
                raise CommandError(_NO_SHOW.format(slug=project.slug, demo_file=settings.DATA_DIR / DEMO_KEY_FILE))
            row, key = services.issue_key(project, o["name"], o["scopes"])
            scope_list = list(row.scopes)
        if o["json"]:
            self.stdout.write(json.dumps({"slug": project.slug, "api_key": key, "scopes": scope_list}))
        else:
            self.stdout.write(
                f"Project: {project.slug}\nAPI key: {key}\nScopes: {', '.join(scope_list)}\n"
                f"Default country: {project.default_country or 'none'} (local numbers are read as its numbers)\n"
                "(The key is shown once; keep it safe.)"
            )

    def _settings(self, project: Project, assignments: list[str]) -> None:
        if assignments:
            changes: dict[str, Any] = {}
            for item in assignments:
                name, sep, text = item.partition("=")
                if not sep:
                    raise CommandError(f'--set {item!r}: give NAME=VALUE, the value in JSON (e.g. true, 24, ["US"]).')
                try:
                    changes[name.strip()] = json.loads(text)
                except json.JSONDecodeError as e:
                    raise CommandError(f"--set {name}: the value is not JSON: {e}") from e
            # The installation's command line may weaken a legal rule; the audit log records it all the same.
            services.update_settings(project, changes, may_weaken=True)
        self.stdout.write(json.dumps(services.get_settings(project), indent=2))

    def _audit(self, o: dict[str, Any]) -> None:
        audited = _project(o["slug"])
        qs = queries.audit_log(audited, o["setting"])
        if o["csv"]:
            for line in queries.csv_lines(qs.iterator(chunk_size=2000)):
                self.stdout.write(line, ending="")
            return
        rows = list(qs[: max(o["limit"], 0)])
        if o["json"]:
            out = [
                {
                    "at": e.at.isoformat(),
                    "source": e.source,
                    "who": e.who,
                    "setting": e.setting,
                    "before": e.before,
                    "after": e.after,
                    "weakens": e.weakens,
                }
                for e in rows
            ]
            self.stdout.write(json.dumps(out))
            return
        for e in rows:
            flag = "\tWEAKENS A LEGAL RULE" if e.weakens else ""
            before, after = queries.shown(e.before) or "—", queries.shown(e.after) or "—"
            at = wallclock.shown(e.at, audited.default_time_zone, "second")  # the project's clock, labelled
            self.stdout.write(f"{at}\t{e.who or e.source}\t{e.setting}\t{before} → {after}{flag}")

    # --- texts and translations (casemsg.consent.texts, casemsg.translations) ---------------------------
    def _texts(self, project: Project, o: dict[str, Any]) -> None:
        changes: dict[str, dict[str, str | None]] = {}
        for key, lang, text in o["set"]:
            changes.setdefault(key, {})[lang] = text
        for key, lang in o["reset"]:
            changes.setdefault(key, {})[lang] = None
        if changes:
            # The installation's command line may weaken a legal rule; the audit log records it all the same.
            texts.update(project, changes, may_weaken=True)
        listing = texts.listing(project)
        if o["json"]:
            self.stdout.write(json.dumps({"languages": texts.languages(project), "items": listing}, indent=2))
            return
        for t in listing:
            flags = "".join(f" [{f}]" for f in ("legal", "names_opt_out", "optional") if t[f])
            self.stdout.write(f"{t['key']}\t{t['title']}{flags}")
            for lang, shown in t["effective"].items():
                source = "own" if shown["own"] else ("default" if shown["text"] else "nothing sent")
                if shown["language"] != lang and shown["text"]:
                    source += f", from {shown['language']}"
                self.stdout.write(f"  {lang}\t({source})\t{shown['text']}")

    def _translations(self, project: Project, o: dict[str, Any]) -> None:
        if o["export"]:
            target = o["export"]
            if target.lower().endswith(".xlsx"):
                with open(target, "wb") as fh:
                    fh.write(translation_files.export_xlsx(project))
            elif target == "-":
                for line in translation_files.export_csv(project):
                    self.stdout.write(line, ending="")
            else:
                with open(target, "w", encoding="utf-8", newline="") as out:
                    out.writelines(translation_files.export_csv(project))
            if target != "-":
                self.stdout.write(f"Wrote {target}.")
            return
        if not o["import_file"]:
            raise CommandError("Give --export FILE or --import FILE.")
        path = o["import_file"]
        try:
            translation_files.check_upload_size(os.path.getsize(path))
            with open(path, "rb") as fh:
                upload = translation_files.read(project, fh.read(), path)
        except OSError as e:
            raise CommandError(f"{path}: {e.strerror}") from e
        if o["preview"]:
            result = translation_files.preview(project, upload, may_weaken=True)
        else:
            result = translation_files.apply(project, upload, may_weaken=True)
        for c in result.changes:
            after = "(removed)" if c.after is None else c.after
            self.stdout.write(f"row {c.row}\t{c.type} {c.id} {c.field}\t{c.language}\t{c.before or '—'} → {after}")
        for row, message in result.problems:
            self.stdout.write(f"row {row}: {message}")
        verb = "Applied" if result.applied else "Would change"
        self.stdout.write(f"{verb} {len(result.changes)} translations; {len(result.problems)} problems.")
