import getpass
import json

from django.core.management.base import BaseCommand, CommandError

from casemsg.commands import lookup
from casemsg.core import actor
from casemsg.core.errors import InputError
from casemsg.gateways import queries, services


def _project(slug):
    return lookup.project(slug) if slug else None


class Command(BaseCommand):
    help = "Configure SMS gateways and the prefix routes that choose them."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        a = sub.add_parser("add", help="add a gateway")
        a.add_argument("name")
        a.add_argument("--type", required=True)
        a.add_argument("--config", default="{}", help="JSON object")
        a.add_argument("--project", default="", help="a project's own gateway (default: installation-wide)")
        a.add_argument("--rate-limit", type=int, default=0, help="segments per second (0 = no limit)")
        a.add_argument("--countries", default="", help="comma-separated ISO codes it sends to")
        m = sub.add_parser("map", help="route a number prefix ('*' = everything else) to a gateway")
        m.add_argument("prefix")
        m.add_argument("name")
        m.add_argument("--project", default="")
        m.add_argument("--then", default="", help="further gateways in order, comma-separated (failover)")
        r = sub.add_parser(
            "remove", help="remove a gateway (refused while a route lists it or messages wait on it, unless --force)"
        )
        r.add_argument("name")
        r.add_argument("--project", default="", help="a project's own gateway (default: the installation's)")
        r.add_argument(
            "--force",
            action="store_true",
            help="take it out of its routes first (each goes on through its next gateway) and route its waiting "
            "messages again",
        )
        u = sub.add_parser("unmap", help="remove a prefix's route, or only one gateway from it")
        u.add_argument("prefix")
        u.add_argument("name", nargs="?", default="", help="take only this gateway out of the route")
        u.add_argument("--project", default="", help="a project's route (default: the installation's)")
        for verb, what in (("disable", "its messages go to their route's next gateway"), ("enable", "again")):
            d = sub.add_parser(verb, help=f"{verb} a gateway ({what})")
            d.add_argument("name")
            d.add_argument("--project", default="")
        n = sub.add_parser("numbers", help="a gateway's pool of sender numbers: list, --add, --remove")
        n.add_argument("name")
        n.add_argument("--project", default="")
        n.add_argument("--add", default="", help="a number (or sender ID) to add to the pool")
        n.add_argument("--rate-limit", type=int, default=0, help="the added number's segments per second")
        n.add_argument("--remove", default="", help="a number to remove from the pool")
        sub.add_parser("list", help="list gateways (with their circuit) and routes")

    def handle(self, *args, **o):
        # changes of the installation's gateways and routes are in its audit log, named as the command line
        with actor.acting_as("cli", f"command line ({getpass.getuser()})"):
            self._handle(o)

    def _handle(self, o):
        try:
            if o["action"] == "add":
                try:
                    config = json.loads(o["config"])
                except json.JSONDecodeError as e:
                    raise CommandError(f"--config is not valid JSON: {e}") from e
                gw = services.add_gateway(
                    o["name"],
                    o["type"],
                    config,
                    _project(o["project"]),
                    o["rate_limit"],
                    o["countries"].split(",") if o["countries"] else [],
                )
                self.stdout.write(f"Gateway {gw.name} ({gw.type}) added.")
                self.stdout.write(f"  inbound URL: {services.inbound_url(gw)}")
                self.stdout.write(f"  status callback URL: {services.status_url(gw)}")
            elif o["action"] == "map":
                then = [n.strip() for n in o["then"].split(",") if n.strip()]
                r = services.map_prefix(o["prefix"], o["name"], _project(o["project"]), then=then)
                scope = f"project {r.project.slug}" if r.project is not None else "installation"
                chain = " → ".join([r.gateway.name, *then])
                self.stdout.write(f"Route {r.prefix} → {chain} ({scope}).")
            elif o["action"] == "remove":
                done = services.remove_gateway(o["name"], _project(o["project"]), force=o["force"])
                for use in done:
                    self.stdout.write(f"  taken out of {use}")
                self.stdout.write(f"Gateway {o['name']} removed.")
            elif o["action"] == "unmap":
                project = _project(o["project"])
                scope = f"project {project.slug}" if project is not None else "installation"
                if o["name"]:
                    left = services.unmap_gateway(o["prefix"], o["name"], project)
                    if left is None:
                        self.stdout.write(f"Route {o['prefix']} removed: {o['name']} was its only gateway ({scope}).")
                    else:
                        chain = " → ".join(queries.route_chain(left))
                        self.stdout.write(
                            f"Gateway {o['name']} taken out of route {left.prefix}: now {chain} ({scope})."
                        )
                elif services.unmap_prefix(o["prefix"], project):
                    self.stdout.write(f"Route {o['prefix'].strip().lstrip('+')} removed ({scope}).")
                else:
                    raise CommandError(f"There is no route {o['prefix']} ({scope}); `casemsg gateway list` shows them.")
            elif o["action"] == "numbers":
                project = _project(o["project"])
                if o["add"]:
                    services.add_pool_number(o["name"], project, o["add"], o["rate_limit"])
                if o["remove"] and not services.remove_pool_number(o["name"], project, o["remove"]):
                    raise CommandError(f"Gateway {o['name']} has no pool number {o['remove']}.")
                pooled = services.find_gateway(o["name"], project)
                if pooled is None:
                    raise CommandError(f"No gateway named '{o['name']}'.")
                for number, kept in queries.pool_numbers(pooled):
                    rate = f"{number.rate_limit}/s" if number.rate_limit else "no limit"
                    self.stdout.write(f"{number.number}\trate={rate}\trecipients={kept}")
            elif o["action"] in ("disable", "enable"):
                gw = services.set_enabled(o["name"], _project(o["project"]), o["action"] == "enable")
                self.stdout.write(f"Gateway {gw.name} {o['action']}d.")
            else:
                gateways = list(queries.all_gateways())
                circuits = queries.circuits(gateways)
                for g in gateways:
                    scope = g.project.slug if g.project is not None else "*"
                    self.stdout.write(
                        f"{g.name}\t{g.type}\tproject={scope}\trate={g.rate_limit}/s\tcircuit={circuits[g.pk]}"
                    )
                routes = list(queries.all_routes())
                further = queries.route_then(routes)
                for r in routes:
                    scope = r.project.slug if r.project is not None else "installation"
                    chain = " → ".join([r.gateway.name, *further[r.pk]])
                    self.stdout.write(f"route {r.prefix} → {chain} ({scope})")
        except InputError as e:
            raise CommandError(f"{e.code}: {e.message}") from e
