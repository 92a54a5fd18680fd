import json

from django.core.management.base import BaseCommand, CommandError

from casemsg.commands import lookup
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
