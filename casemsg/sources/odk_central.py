"""ODK Central: an Entity List read through its OData feed.

Authentication: `POST {base_url}/v1/sessions` with the web user's `email` and `password` gives a session
token (sent as `Authorization: Bearer …`), or an `app_user_token` is put in the path
(`/v1/key/{token}/projects/…`), as Central's own clients do. The token is asked for at the start of every
sync and never stored.

Reading: `GET /v1/projects/{project_id}/datasets/{entity_list}.svc/Entities?$top=…&$count=true` and, after
the first sync, `$filter=__system/updatedAt gt T or __system/createdAt gt T or __system/deletedAt gt T`
(so new, changed and deleted entities come back; Central returns deleted entities only to a filter that
names `__system/deletedAt`). Pages follow `@odata.nextLink` (its `$skiptoken` is Central's cursor). The
entity's `__id` is the case id, its `label` the case name, its properties the fields the mapping reads;
an entity with `__system/deletedAt` closes its case. The watermark is the newest of `createdAt`,
`updatedAt` and `deletedAt`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from yarl import URL

from casemsg.core import errors
from casemsg.core.errors import InputError
from casemsg.sources.base import Field, Page, Record, SourceType, iso, parse_time
from casemsg.sources.client import SourceError, where


def record(value: Any, entity_list: str) -> Record:
    if not isinstance(value, dict):
        raise SourceError(errors.SOURCE_BAD_ANSWER, "An ODK entity is not a JSON object.")
    raw_system = value.get("__system")
    system: dict[str, Any] = raw_system if isinstance(raw_system, dict) else {}
    times = [parse_time(system.get(k)) for k in ("createdAt", "updatedAt", "deletedAt")]
    stamps = [t for t in times if t is not None]
    fields = {k: v for k, v in value.items() if not k.startswith(("__", "@")) and k != "label"}
    label = value.get("label")
    return Record(
        id=str(value.get("__id") or ""),
        case_type=entity_list,
        name=None if label is None else str(label),
        closed=times[2] is not None,
        modified=max(stamps) if stamps else None,
        fields=fields,
    )


class OdkCentralSource(SourceType):
    type_name = "odk_central"
    title = "ODK Central (Entities)"
    description = "The entities of an ODK Central Entity List, through its OData feed."
    record_case_type = True
    config_schema: ClassVar[dict[str, Field]] = {
        "base_url": Field(required=True, url=True, help="Central's address, e.g. https://central.example.org."),
        "project_id": Field("number", required=True, help="The Central project's number (in its URL)."),
        "entity_list": Field(required=True, help="The Entity List's name (the dataset)."),
        "email": Field(help="A web user's e-mail address (with password)."),
        "password": Field(secret=True, help="That web user's password."),
        "app_user_token": Field(secret=True, help="Or an app user's token (instead of e-mail and password)."),
        "page_size": Field("number", default=1000, help="Entities per page."),
    }

    @classmethod
    def check_config(cls, config: Any) -> None:
        if not config.get("app_user_token") and not (config.get("email") and config.get("password")):
            raise InputError(
                errors.INVALID_SOURCE_CONFIG, "An ODK Central source needs email and password, or app_user_token."
            )

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._token: str | None = None

    def _base(self) -> str:
        return str(self.config["base_url"]).rstrip("/")

    def _prefix(self) -> str:
        token = self.config.get("app_user_token")
        return f"/v1/key/{quote(str(token), safe='')}" if token else "/v1"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if not self.config.get("app_user_token"):
            if self._token is None:
                doc, _reply = self.client.get_json(
                    f"{self._base()}/v1/sessions",
                    method="POST",
                    json={"email": self.config.get("email"), "password": self.config.get("password")},
                )
                token = doc.get("token") if isinstance(doc, dict) else None
                if not isinstance(token, str) or not token:
                    raise SourceError(errors.SOURCE_BAD_ANSWER, f"{where(self._base())} gave no session token.")
                self._token = token
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _entities_path(self) -> str:
        pid = int(float(self.config["project_id"]))
        return f"/projects/{pid}/datasets/{quote(str(self.config['entity_list']), safe='')}.svc/Entities"

    def first(self, since: datetime | None) -> dict[str, Any]:
        params = [["$top", str(self.page_size)], ["$count", "true"]]
        if since is not None:
            t = iso(since, 3)
            params.append(
                ["$filter", f"__system/updatedAt gt {t} or __system/createdAt gt {t} or __system/deletedAt gt {t}"]
            )
        return {"path": self._entities_path(), "params": params}

    def page(self, cursor: dict[str, Any]) -> Page:
        headers = self._headers()
        path = cursor.get("abs_path") or self._prefix() + str(cursor["path"])
        url = self._base() + str(path)
        query = [tuple(p) for p in cursor.get("params") or []]
        doc, reply = self.client.get_json(url, params=query or None, headers=headers)
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
            raise SourceError(errors.SOURCE_BAD_ANSWER, f"{where(url)} did not answer an OData page (no 'value').")
        following = None
        nxt = doc.get("@odata.nextLink")
        if isinstance(nxt, str) and nxt:
            link = URL(url).join(URL(nxt))
            base = URL(self._base())
            if (link.scheme, link.host, link.port) != (base.scheme, base.host, base.port):
                raise SourceError(errors.SOURCE_BAD_ANSWER, f"{where(url)} sent a next link to another host.")
            path = link.raw_path
            prefix = URL(self._base() + self._prefix()).raw_path
            params: list[list[str]] = [[k, v] for k, v in link.query.items()]
            if path.startswith(prefix):  # kept without the app user's token: a cursor holds no secret
                following = {"path": path[len(prefix) :], "params": params}
            else:
                following = {"abs_path": path, "params": params}
        total = doc.get("@odata.count")
        name = str(self.config["entity_list"])
        return Page(
            [record(v, name) for v in doc["value"]],
            following,
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
            clock=reply.date,
        )
