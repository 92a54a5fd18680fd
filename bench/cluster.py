"""A cluster on one machine: every "machine" a Linux network namespace of its own, made by this script, on
PostgreSQL + Redis — web nodes (`casemsg serve --no-worker`) behind a round-robin client, worker nodes
(`casemsg worker`), and a fake Twilio in a namespace of its own; then a worker node's namespace torn down
mid-run.

    sudo .venv/bin/python bench/cluster.py                         # 3 web, 4 workers, 50,000 messages
    sudo .venv/bin/python bench/cluster.py --web 2 --workers 2 --messages 2000 --inbound 200 --rate 150

Needs root (or CAP_NET_ADMIN) and `ip` (iproute2); exits 0 with a "skipped" line where namespaces cannot be
made. PostgreSQL and Redis come from CASEMSG_DATABASE_URL / CASEMSG_QUEUE_URL (default the local
postgresql://postgres@127.0.0.1:5432/test and redis://127.0.0.1:6379/0).

**The network.** A bridge with a private /24 that no route of the host uses (10.X.Y.0/24, its .1 on the
host); each node a namespace with its own loopback and a veth pair whose host end is on the bridge, the
node's address .10 and up, and no other route: a node reaches the host's .1 and the other nodes, nothing
else. PostgreSQL and Redis listen on 127.0.0.1 only, and stay so: a TCP forwarder on the host's .1
(socat, or a small asyncio relay without it) passes the nodes' connections to them, so no setting of
either server changes. Everything is removed at the end — on an error, on SIGINT, SIGTERM or SIGHUP, and
leftovers of a run killed outright are removed by the next run.

**The run.** A scratch database `casemsg_bench_cluster` (created, migrated, dropped; or --database-url to
use one that is already migrated, as tests/ops/test_cluster.py does with the test database) and a Redis
database number of its own (--redis-db, default 7, flushed). One project, --messages cases (setup, not
timed), a `twilio` gateway pointing at the fake with a rate limit of --rate messages per second, and a
keyword with a reply. The client posts --messages API sends (`POST /api/v1/projects/…/messages`, each with
an Idempotency-Key, retried on another node when a node fails to answer) and --inbound signed Twilio
webhooks (a keyword, each from a different case's number), round-robin over the web nodes. When --kill-at
of the sends have reached the fake, the worker node holding the ticker lease is torn down: every process
in its namespace gets SIGKILL, then the namespace goes. The run ends when every message is sent, failed,
or --max-seconds have passed.

**The checks** (met / MISSED each; exit 1 on a miss):

1. every message sent exactly once (counted at the fake by recipient and text), or received more than once
   and flagged SENDING_OUTCOME_UNKNOWN; none lost; every webhook stored once and answered by one reply;
2. the gateway's rate limit held across the nodes, as the fake measured it: the busiest second within
   ±5 % of --rate at most, and, while a backlog waited, the mean rate at least 95 % of it;
3. one ticker at a time: the lease's terms and the nodes' own "lease taken / lost" log lines — no two nodes
   leading at once, a new leader within the lease's 10 s (+ a beat) of the leader's kill;
4. the kill lost nothing: the killed node's messages among the sent ones (in the first check), and how many
   came back through the sweeper.

Prints the figures with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import Verdicts, load  # noqa: E402  (after the path: the bench runs as a script)

PG_DB = "casemsg_bench_cluster"
PREFIX = "cmcl"  # every namespace, link and temporary directory of a run: cmcl<pid>…
KEYWORD = "CLINIC"
KEYWORD_REPLY = "The clinic is open 8:00-17:00, Monday to Saturday."
TWIML_OK = (200, 204)
WEB_PORT = 8000
FAKE_PORT = 9000
LEASE_SECONDS = 10.0  # casemsg.ops.leadership.LEASE_SECONDS (read from there once Django is set up)
TOLERANCE = 0.05


MARK = "CASEMSG_CLUSTER_RUN"  # in the environment of every process a run starts: its leftovers are found by it


def _die_with_parent() -> None:
    """In a child before exec: SIGKILL when the bench dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def log(line: str) -> None:
    print(line, flush=True)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


# --- helpers run inside the namespaces ----------------------------------------------------------------
def serve_fake(host: str, port: int) -> None:
    """`cluster.py _fake HOST PORT`: the fake Twilio, listening on the gateway namespace's address."""
    from fakes.gateways import FakeGateway
    from fakes.serving import serve_until_signalled

    serve_until_signalled(FakeGateway("twilio", host=host, port=port, lean=True))


def serve_forwarder(bind: str, port: int, target_port: int) -> None:
    """`cluster.py _forward BIND PORT TARGET_PORT`: relay connections on BIND:PORT to 127.0.0.1:TARGET_PORT
    (used when socat is not installed)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main() -> None:
        server = await asyncio.start_server(handle, bind, port, reuse_address=True, backlog=512)
        print("READY", flush=True)
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


# --- the network --------------------------------------------------------------------------------------
@dataclass
class Node:
    name: str  # web1, worker2, gateway
    ns: str
    addr: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_path: Path | None = None
    killed_at: float | None = None


class Net:
    """A bridge with a private /24 on the host, and one namespace per node on it."""

    def __init__(self, tag: str) -> None:
        self.tag = tag  # PREFIX + pid: unique while this process lives
        self.bridge = f"{tag}br"
        self.nodes: dict[str, Node] = {}
        self.host_procs: list[subprocess.Popen[bytes]] = []
        self.subnet = self._free_subnet()
        hosts = list(self.subnet.hosts())
        self.host_addr = str(hosts[0])
        self._next = 9  # nodes from .10

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        """A /24 in 10.0.0.0/8 that overlaps no address or route of the host."""
        used = []
        for line in (
            sh("ip", "-4", "route", "show", "table", "all").stdout.splitlines()
            + sh("ip", "-4", "-o", "addr").stdout.splitlines()
        ):
            for word in line.split():
                with contextlib.suppress(ValueError):
                    if "/" in word or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", word):
                        used.append(ipaddress.ip_network(word, strict=False))
        for second in range(200, 255):
            for third in range(os.getpid() % 250, 250):
                net = ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
                if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
                    return net
        raise SystemExit("no free private /24 in 10.200.0.0–10.254.255.0")

    def create(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.host_addr}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def add(self, name: str) -> Node:
        self._next += 1
        i = self._next
        ns = f"{self.tag}-{name}"
        host_end, node_end = f"{self.tag}h{i}", f"{self.tag}n{i}"
        addr = str(self.subnet.network_address + i)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end)
        sh("ip", "link", "set", host_end, "master", self.bridge)
        sh("ip", "link", "set", host_end, "up")
        sh("ip", "link", "set", node_end, "netns", ns)
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", node_end)
        sh("ip", "-n", ns, "link", "set", node_end, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        node = Node(name, ns, addr)
        self.nodes[name] = node
        return node

    def run(self, node: Node, cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
        """A process in the node's namespace (`ip netns exec` execs it: its pid is the process's own)."""
        node.log_path = log_path
        out = log_path.open("ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", node.ns, *cmd],
            env={**env, MARK: self.tag},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        out.close()
        node.procs.append(proc)
        return proc

    def forward(self, port: int, target_port: int) -> None:
        """Connections to the host's bridge address at `port` go to 127.0.0.1:`target_port`."""
        if shutil.which("socat"):
            cmd = ["socat", f"TCP-LISTEN:{port},bind={self.host_addr},fork,reuseaddr,backlog=512"]
            cmd.append(f"TCP:127.0.0.1:{target_port}")
            proc = subprocess.Popen(
                cmd, start_new_session=True, env={**os.environ, MARK: self.tag}, preexec_fn=_die_with_parent
            )
        else:
            args = [sys.executable, __file__, "_forward", self.host_addr, str(port), str(target_port)]
            proc = subprocess.Popen(
                args,
                start_new_session=True,
                stdout=subprocess.PIPE,
                env={**os.environ, MARK: self.tag},
                preexec_fn=_die_with_parent,
            )
            assert proc.stdout is not None
            proc.stdout.readline()
        self.host_procs.append(proc)

    def pids(self, node: Node) -> list[int]:
        out = sh("ip", "netns", "pids", node.ns, check=False).stdout
        return [int(p) for p in out.split()]

    def cpu_seconds(self, node: Node) -> float:
        """CPU time of the processes in the node's namespace (theirs and their reaped children's)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.pids(node):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        return total

    def tear_down(self, node: Node) -> None:
        """The machine is gone: every process in its namespace killed at once, then the namespace."""
        for _ in range(3):
            pids = self.pids(node)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        for p in node.procs:
            with contextlib.suppress(Exception):
                p.wait(5)
        sh("ip", "netns", "del", node.ns, check=False)  # its veth goes with it
        node.killed_at = node.killed_at or time.monotonic()

    def stop(self, node: Node) -> None:
        """A clean stop (SIGTERM to its processes, then whatever is left killed with the namespace)."""
        for p in node.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in node.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - time.monotonic()))
        self.tear_down(node)

    def close(self) -> None:
        for node in self.nodes.values():
            if node.killed_at is None:
                self.stop(node)
        for p in self.host_procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)  # socat's children (one per connection) with it
            with contextlib.suppress(Exception):
                p.wait(5)
        sh("ip", "link", "del", self.bridge, check=False)


def remove_leftovers() -> None:
    """The processes, namespaces and bridges of earlier runs whose bench process is gone (killed with SIGKILL:
    no cleanup ran). Processes are found by the mark in their environment: the nodes' children and the
    forwarders' per-connection children as well."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            mark = re.search(
                rb"(?:^|\0)" + MARK.encode() + rb"=" + PREFIX.encode() + rb"(\d+)\0", (proc / "environ").read_bytes()
            )
            if mark and not Path(f"/proc/{mark.group(1).decode()}").exists():
                os.kill(int(proc.name), signal.SIGKILL)
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{PREFIX}(\d+)-.*", name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            sh("ip", "netns", "del", name, check=False)
    for directory in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        m = re.fullmatch(rf"{PREFIX}(\d+)-.*", directory.name)
        if m and not Path(f"/proc/{m.group(1)}").exists() and not (directory / "KEPT").exists():
            shutil.rmtree(directory, ignore_errors=True)  # the nodes' logs and data directories (not --keep's)
    for line in sh("ip", "-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        m = re.search(rf"\s({PREFIX}(\d+)br)[:@]", line)
        if m and not Path(f"/proc/{m.group(2)}").exists():
            sh("ip", "link", "del", m.group(1), check=False)


def namespaces_unavailable() -> str:
    """Why this machine cannot make network namespaces ("" when it can)."""
    if not shutil.which("ip"):
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    link = sh("ip", "link", "add", f"{PREFIX}{os.getpid()}pb", "type", "bridge", check=False)
    if link.returncode != 0:
        return f"`ip link add … type bridge` failed: {link.stderr.strip()}"
    sh("ip", "link", "del", f"{PREFIX}{os.getpid()}pb", check=False)
    return ""


# --- the load: round-robin API sends and webhooks ---------------------------------------------------------
@dataclass
class Load:
    sent: int = 0  # messages the API answered 202 for (one per single send, the recipients of a send to many)
    send_failed: int = 0  # messages of sends that failed
    requests: int = 0  # requests answered
    retries: int = 0
    hooks: int = 0  # webhooks answered 2xx
    hook_failed: int = 0
    per_node: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0


def interleave(kinds: list[list[tuple[str, Any]]]) -> list[tuple[str, Any]]:
    """The requests of every kind spread evenly over the run (a send to many among the single sends, …)."""
    keyed = [(i / len(items), k, item) for k, items in enumerate(kinds) for i, item in enumerate(items)]
    return [item for _pos, _k, item in sorted(keyed, key=lambda x: (x[0], x[1]))]


async def drive(
    nodes: list[str],
    slug: str,
    key: str,
    jobs: list[tuple[str, Any]],
    hook_path: str,
    auth_token: str,
    concurrency: int,
) -> Load:
    """Every request in turn, each to the next web node (a round-robin balancer): `send` (case id, text), a
    message to one case; `many` (case ids, text), one message to each of many cases (a broadcast of type now,
    through the same operation); `hook` (Twilio's form fields), an inbound SMS."""
    import aiohttp
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(auth_token)
    out = Load()
    turn = 0
    headers = {"Authorization": f"Bearer {key}"}

    async def one(session: aiohttp.ClientSession, kind: str, item: Any) -> None:
        nonlocal turn
        idem = str(uuid.uuid4())
        size = len(item[0]) if kind == "many" else 1
        for attempt in range(6):
            node = nodes[turn % len(nodes)]
            turn += 1
            try:
                if kind == "hook":
                    url = f"http://{node}:{WEB_PORT}{hook_path}"
                    sig = validator.compute_signature(url, item)
                    async with session.post(url, data=item, headers={"X-Twilio-Signature": sig}) as r:
                        await r.read()
                        status = r.status
                else:
                    recipient = {"case_id": item[0]} if kind == "send" else {"case_ids": item[0]}
                    # a send to one carries an Idempotency-Key, so a retry on another node sends nothing twice
                    extra = {"Idempotency-Key": idem} if kind == "send" else {}
                    async with session.post(
                        f"http://{node}:{WEB_PORT}/api/v1/projects/{slug}/messages",
                        json={"recipient": recipient, "text": item[1]},
                        headers={**headers, **extra},
                    ) as r:
                        body = await r.read()
                        status = r.status
                        if kind == "many" and status == 202 and json.loads(body).get("queued") != size:
                            status = -1  # answered, but not every recipient queued
            except (TimeoutError, aiohttp.ClientError):
                status = 0
            out.statuses[status] += 1
            if status == 202 or (kind == "hook" and status in TWIML_OK):
                out.per_node[node] += 1
                out.requests += 1
                if kind == "hook":
                    out.hooks += 1
                else:
                    out.sent += size
                return
            # retried on the next node only when that cannot double anything: a send to one (its key), or a
            # request no node answered (a webhook: Twilio retries alike; a send to many: never retried)
            if kind == "many" or (kind == "hook" and status != 0):
                break
            out.retries += 1
            await asyncio.sleep(0.2 * (attempt + 1))
        if kind == "hook":
            out.hook_failed += 1
        else:
            out.send_failed += size

    t = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        pending: set[asyncio.Task[None]] = set()
        for kind, item in jobs:
            if len(pending) >= concurrency:
                _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending.add(asyncio.ensure_future(one(session, kind, item)))
        if pending:
            await asyncio.wait(pending)
    out.seconds = time.perf_counter() - t
    return out


# --- reading the result -----------------------------------------------------------------------------------
LEASE_LINE = re.compile(r"ticker lease (taken|lost|released) by (\S+) \(term (\d+)\)")


def lease_events(node: Node) -> list[tuple[float, str, str, int]]:
    """(epoch seconds, taken/lost/released, holder, term) from a worker node's JSON log lines."""
    events: list[tuple[float, str, str, int]] = []
    if node.log_path is None or not node.log_path.exists():
        return events
    for line in node.log_path.read_text(errors="replace").splitlines():
        if "ticker lease" not in line or not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError, KeyError):
            rec = json.loads(line)
            m = LEASE_LINE.search(rec["message"])
            if m:
                t = datetime.fromisoformat(rec["time"]).timestamp()
                events.append((t, m.group(1), m.group(2), int(m.group(3))))
    return events


def leadership_intervals(
    workers: list[Node], kill_wall: float | None, killed: Node | None, end_wall: float
) -> dict[str, list[tuple[float, float, int]]]:
    """Per node, the spans it believed it led (its own log lines), ended by its loss, release, kill or the end."""
    spans: dict[str, list[tuple[float, float, int]]] = {}
    for node in workers:
        open_at: tuple[float, int] | None = None
        for t, what, _holder, term in sorted(lease_events(node)):
            if what == "taken":
                open_at = (t, term)
            elif open_at is not None:
                spans.setdefault(node.name, []).append((open_at[0], t, open_at[1]))
                open_at = None
        if open_at is not None:
            end = kill_wall if (node is killed and kill_wall is not None) else end_wall
            spans.setdefault(node.name, []).append((open_at[0], end, open_at[1]))
    return spans


def overlap_seconds(spans: dict[str, list[tuple[float, float, int]]]) -> float:
    flat = [(a, b, name) for name, items in spans.items() for a, b, _ in items]
    total = 0.0
    for i, (a1, b1, n1) in enumerate(flat):
        for a2, b2, n2 in flat[i + 1 :]:
            if n1 != n2:
                total += max(0.0, min(b1, b2) - max(a1, a2))
    return total


# --- the run ------------------------------------------------------------------------------------------
def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_fake":
        serve_fake(sys.argv[2], int(sys.argv[3]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_forward":
        serve_forwarder(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--web", type=int, default=3, help="web nodes (default 3)")
    ap.add_argument("--workers", type=int, default=4, help="worker nodes (default 4)")
    ap.add_argument("--messages", type=int, default=50_000, help="messages sent through the API (default 50,000)")
    ap.add_argument("--singles", type=int, default=5_000, help="of them, sent one per request (default 5,000)")
    ap.add_argument("--chunk", type=int, default=500, help="the others: recipients per request (default 500)")
    ap.add_argument("--inbound", type=int, default=2_000, help="webhooks, spread over the web nodes (default 2,000)")
    ap.add_argument("--rate", type=int, default=250, help="the gateway's rate limit, messages/s (default 250)")
    ap.add_argument(
        "--kill-at", type=float, default=0.4, help="tear a worker node down at this share received (≥ 1: never)"
    )
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn processes per web node (default 2)")
    ap.add_argument("--concurrency", type=int, default=32, help="requests in flight from the client")
    ap.add_argument("--sending-timeout", type=int, default=5, help="CASEMSG_SENDING_TIMEOUT_SECONDS (default 5)")
    ap.add_argument(
        "--max-seconds", type=float, default=900.0, help="the whole run's bound, the nodes' start included (900)"
    )
    ap.add_argument("--redis-db", type=int, default=7, help="the queue's Redis database number (default 7)")
    ap.add_argument("--database-url", default="", help="an already migrated database to use (not dropped)")
    ap.add_argument("--queue-url", default="", help="the Redis URL to use as it is (not --redis-db)")
    ap.add_argument("--rate-window", type=float, default=1.0, help="the window the busiest rate is read over (1 s)")
    ap.add_argument(
        "--rate-tolerance", type=float, default=TOLERANCE, help="the busiest second's margin over the limit (0.05)"
    )
    ap.add_argument(
        "--no-judge-rate-use", action="store_true", help="print, but do not judge, whether the limit was reached"
    )
    ap.add_argument("--keep", action="store_true", help="keep the nodes' logs (printed path)")
    args = ap.parse_args()

    why = namespaces_unavailable()
    if why:
        log(f"skipped: network namespaces cannot be made here — {why}")
        return 0
    pg_url = args.database_url or os.environ.get("CASEMSG_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    queue_url = args.queue_url or os.environ.get("CASEMSG_QUEUE_URL") or "redis://127.0.0.1:6379/0"
    if not pg_url.startswith("postgres") or not queue_url.startswith("redis://"):
        log("skipped: the cluster needs PostgreSQL and Redis (CASEMSG_DATABASE_URL, CASEMSG_QUEUE_URL)")
        return 0
    if not args.queue_url:
        queue_url = urlunsplit(urlsplit(queue_url)._replace(path=f"/{args.redis_db}"))

    import psycopg
    import redis

    remove_leftovers()
    tag = f"{PREFIX}{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    net = Net(tag)
    scratch = not args.database_url  # a database of its own, made and dropped here
    admin_url = pg_url
    if scratch:
        pg_url = urlunsplit(urlsplit(pg_url)._replace(path="/" + PG_DB))
    cleaned = False

    def cleanup() -> None:
        nonlocal cleaned
        if cleaned:
            return
        cleaned = True
        net.close()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if scratch:
            with contextlib.suppress(Exception), psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        with contextlib.suppress(Exception):
            redis.Redis.from_url(queue_url).flushdb()
        if args.keep:
            (tmp / "KEPT").touch()
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def on_signal(signum: int, _frame: object) -> None:
        cleanup()
        log(f"stopped by signal {signum}; namespaces, processes, database and queue removed")
        os._exit(1)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        if scratch:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
                admin.execute(f"CREATE DATABASE {PG_DB}")
        redis.Redis.from_url(queue_url).flushdb()
        return run(args, net, tmp, pg_url, queue_url, migrate=scratch)
    finally:
        cleanup()


def run(args: argparse.Namespace, net: Net, tmp: Path, pg_url: str, queue_url: str, migrate: bool) -> int:
    import psycopg

    verdicts = Verdicts("bench/cluster.py")
    # one bound for the whole run, the nodes' start included: a run on a starved machine ends with its
    # verdicts (and cleans up) rather than being killed from outside
    deadline = time.monotonic() + args.max_seconds

    def left_s(cap: float) -> float:
        return max(1.0, min(cap, deadline - time.monotonic()))

    net.create()
    pg, rd = urlsplit(pg_url), urlsplit(queue_url)
    net.forward(pg.port or 5432, pg.port or 5432)
    net.forward(rd.port or 6379, rd.port or 6379)

    # the nodes see PostgreSQL and Redis at the host's bridge address
    def on_host(parts: Any) -> str:
        netloc = parts.netloc.rsplit("@", 1)
        hostport = f"{net.host_addr}:{parts.port or (5432 if parts.scheme.startswith('postgres') else 6379)}"
        return urlunsplit(parts._replace(netloc=(netloc[0] + "@" if len(netloc) == 2 else "") + hostport))

    base_env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION" and not k.startswith("CASEMSG_")}
    base_env.update(
        CASEMSG_SECRET_KEY=secrets.token_urlsafe(50),  # the same on every node
        CASEMSG_QUEUE_IMMEDIATE="0",
        CASEMSG_GATEWAY_ALLOW_PRIVATE="1",  # the fake listens on a private address
        CASEMSG_SENDING_TIMEOUT_SECONDS=str(args.sending_timeout),
        CASEMSG_LOG_FORMAT="json",
        DJANGO_SETTINGS_MODULE="casemsg.settings",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    node_env = {
        **base_env,
        "CASEMSG_DATABASE_URL": on_host(pg),
        "CASEMSG_QUEUE_URL": on_host(rd),
    }

    gateway = net.add("gateway")
    fake_log = tmp / "gateway.log"
    # the instrument: at a higher CPU priority, so that a busy machine does not delay the times it stamps
    fake_cmd = ["nice", "-n", "-10", sys.executable, __file__, "_fake", gateway.addr, str(FAKE_PORT)]
    net.run(gateway, fake_cmd, base_env, fake_log)
    webs = [net.add(f"web{i + 1}") for i in range(args.web)]
    workers = [net.add(f"worker{i + 1}") for i in range(args.workers)]
    node_env["CASEMSG_ALLOWED_HOSTS"] = ",".join(n.addr for n in webs)
    fake_url = f"http://{gateway.addr}:{FAKE_PORT}"
    wait_http(fake_url + "/_fake/stats", left_s(30), "the fake gateway", fake_log)

    # this process: setup and reading, straight to 127.0.0.1
    os.environ.update(base_env)
    os.environ.update(CASEMSG_DATABASE_URL=pg_url, CASEMSG_QUEUE_URL=queue_url, CASEMSG_DATA_DIR=str(tmp / "setup"))
    if migrate:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "casemsg", "migrate", "-v", "0"], env=os.environ, cwd=ROOT, check=True)
        log(f"migrated the scratch database in {time.perf_counter() - t:.1f} s")
    import django

    django.setup()
    from django.db import connection

    from casemsg.cases import services as cases
    from casemsg.core import errors
    from casemsg.gateways import services as gateways
    from casemsg.gateways.models import Gateway
    from casemsg.inbound.models import Keyword
    from casemsg.messaging.models import Message
    from casemsg.ops import leadership
    from casemsg.projects.services import create_project
    from fakes.gateways import RemoteFakeGateway

    lease_seconds = leadership.LEASE_SECONDS
    fake = RemoteFakeGateway(fake_url, "twilio")
    slug = f"cluster{os.getpid()}"
    t = time.perf_counter()
    project, key = create_project(slug, "Cluster bench")
    config = fake.gateway_config()
    gw = gateways.add_gateway("tw", "twilio", config, project=project, rate_limit=args.rate)
    gateways.map_prefix("*", "tw", project=project)
    Keyword.objects.create(project=project, keyword=KEYWORD, reply={"en": KEYWORD_REPLY})
    case_ids: list[str] = []
    for start in range(0, args.messages, 1000):
        batch = cases.bulk_upsert(
            project,
            [
                cases.CaseChange(
                    case_type="patient",
                    name=f"Patient {i}",
                    properties={"contact_phone_number": number(i), "contact_phone_number_is_verified": "1"},
                )
                for i in range(start, min(args.messages, start + 1000))
            ],
        )
        case_ids += [c.case_id for c in batch]
    hook_path = gateways.inbound_url(Gateway.objects.get(pk=gw.pk))
    auth_token = config["auth_token"]
    took = time.perf_counter() - t
    log(f"setup: project, gateway (rate limit {args.rate}/s), {len(case_ids):,} cases in {took:.1f} s")
    connection.close()

    # the nodes
    t = time.perf_counter()
    for n in webs:
        cmd = [sys.executable, "-m", "casemsg", "serve", "--no-worker", "--host", n.addr, "--port", str(WEB_PORT)]
        cmd += ["--web-workers", str(args.web_workers), "--no-migrate"]  # migrated once, above
        env = {**node_env, "CASEMSG_DATA_DIR": str(tmp / n.name)}
        net.run(n, cmd, env, tmp / f"{n.name}.log")
    for n in workers:
        env = {**node_env, "CASEMSG_DATA_DIR": str(tmp / n.name), "CASEMSG_LOG_LEVEL": "INFO"}
        net.run(n, [sys.executable, "-m", "casemsg", "worker"], env, tmp / f"{n.name}.log")
    for n in webs:
        wait_http(f"http://{n.addr}:{WEB_PORT}/healthz", left_s(120), n.name, n.log_path)
    for n in workers:
        wait_log(n, "casemsg worker:", left_s(120))
    log(
        f"nodes up in {time.perf_counter() - t:.1f} s: {', '.join(f'{n.name} {n.addr}' for n in webs + workers)}, "
        f"gateway {gateway.addr}; subnet {net.subnet}, host {net.host_addr}; load {load()}"
    )

    # the lease, sampled from here (who holds it, which term)
    samples: list[tuple[float, str, int, bool]] = []
    backlog: list[tuple[float, int]] = []  # (monotonic, messages queued): when the gateway had work waiting
    stop = threading.Event()

    def sample_lease() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT holder, term, expires_on > statement_timestamp() FROM ops_lease WHERE name = 'ticker'"
                ).fetchone()
                if row:
                    samples.append((time.monotonic(), row[0], int(row[1]), bool(row[2])))
                waiting = conn.execute(
                    "SELECT count(*) FROM messaging_message WHERE direction = 'out' AND status = 'queued'"
                ).fetchone()
                backlog.append((time.monotonic(), int(waiting[0]) if waiting else 0))
                stop.wait(0.25)

    # the kill: when --kill-at of the sends reached the fake, the worker node holding the ticker lease goes
    kill: dict[str, Any] = {}

    def killer() -> None:
        target = int(args.kill_at * args.messages)
        while not stop.is_set() and args.kill_at < 1:
            with contextlib.suppress(Exception):
                got = fake.stats()["accepted"]
                if got >= target:
                    holder = samples[-1][1] if samples else ""
                    pid = int(holder.rsplit(":", 1)[1]) if ":" in holder else -1
                    victim = next((n for n in workers if any(p.pid == pid for p in n.procs)), workers[0])
                    kill.update(node=victim, holder=holder, at=time.monotonic(), wall=time.time(), count=got)
                    net.tear_down(victim)
                    kill["seconds"] = time.monotonic() - kill["at"]
                    log(
                        f"killed {victim.name} ({victim.addr}; it held the ticker lease: "
                        f"{'yes' if victim.procs and any(p.pid == pid for p in victim.procs) else 'no'}) "
                        f"at {got:,} messages received; torn down in {kill['seconds']:.2f} s"
                    )
                    return
            stop.wait(0.1)

    singles = min(args.singles, args.messages)
    sends = [("send", (cid, f"Reminder {i}: your visit is due")) for i, cid in enumerate(case_ids[:singles])]
    rest = case_ids[singles:]
    many = [
        ("many", (rest[i : i + args.chunk], f"Reminder, group {i // args.chunk}: your visit is due"))
        for i in range(0, len(rest), args.chunk)
    ]
    hooks = [
        ("hook", twilio_inbound(number(i), f"{KEYWORD} hours?", config["account_sid"]))
        for i in range(min(args.inbound, args.messages))
    ]
    jobs = interleave([sends, many, hooks])
    threads = [threading.Thread(target=sample_lease, daemon=True), threading.Thread(target=killer, daemon=True)]
    for th in threads:
        th.start()
    load0 = load()
    t0 = time.monotonic()
    web_addrs = [n.addr for n in webs]
    try:
        result = asyncio.run(
            asyncio.wait_for(
                drive(web_addrs, slug, key, jobs, hook_path, auth_token, args.concurrency),
                timeout=left_s(args.max_seconds),
            )
        )
    except TimeoutError:
        result = Load(seconds=time.monotonic() - t0, send_failed=args.messages)
        log(f"the client did not finish within --max-seconds {args.max_seconds:g}")
    per_s = result.requests / max(result.seconds, 1e-9)
    log(
        f"client: {len(sends):,} sends to one and {len(many)} to {args.chunk} cases ({result.sent:,} messages "
        f"queued), {result.hooks:,} webhooks, in {result.seconds:.1f} s ({per_s:,.1f} req/s); "
        f"per node {dict(result.per_node)}; retries {result.retries}; answers {dict(result.statuses)}"
    )
    posted_at = time.monotonic()
    # wait for the end: every outbound message final (sent or failed), every webhook answered by a reply
    left = -1
    while time.monotonic() < deadline:
        left = (
            Message.objects.filter(project=project, direction=Message.OUT)
            .exclude(status__in=[Message.SENT, Message.DELIVERED, Message.FAILED])
            .count()
        )
        total = Message.objects.filter(project=project, direction=Message.OUT).count()
        if left == 0 and total >= result.sent + result.hooks and (kill or args.kill_at >= 1):
            break
        time.sleep(0.5)
    connection.close()
    end = time.monotonic()
    end_wall = time.time()
    stop.set()
    for th in threads:
        th.join(5)
    load1 = load()
    cpu = {n.name: net.cpu_seconds(n) for n in webs + workers if n.killed_at is None}

    # --- the checks -----------------------------------------------------------------------------------
    received = fake.requests(accepted=True)
    rows = list(
        Message.objects.filter(project=project, direction=Message.OUT).values_list(
            "pk", "to", "text", "status", "attempts", "history"
        )
    )
    inbound_rows = list(Message.objects.filter(project=project, direction=Message.IN).values_list("to", flat=True))
    connection.close()
    at_fake = Counter((r.to, r.text) for r in received)
    unknown = errors.SENDING_OUTCOME_UNKNOWN
    once = dup_flagged = silent = lost = unfinished = 0
    swept = 0
    for _pk, to, text, status, _attempts, history in rows:
        flagged = any(h.get("code") == unknown for h in history or [])
        swept += flagged
        count = at_fake.get((to, text), 0)
        if status not in (Message.SENT, Message.DELIVERED):
            unfinished += 1
        if count == 1:
            once += 1
        elif count > 1:
            if flagged:
                dup_flagged += 1
            else:
                silent += 1
        else:
            lost += 1
    phantom = len(set(at_fake) - {(to, text) for _pk, to, text, *_ in rows})
    replies = sum(1 for _pk, _to, text, *_ in rows if text == KEYWORD_REPLY)
    sends_rows = len(rows) - replies
    inbound_once = len(inbound_rows) == len(set(inbound_rows)) == result.hooks
    log(
        f"\nmessages: {sends_rows:,} sends + {replies:,} replies = {len(rows):,} rows; at the fake "
        f"{sum(at_fake.values()):,} accepted; once {once:,}, more than once and flagged {dup_flagged:,}, "
        f"more than once NOT flagged {silent:,}, never received {lost:,}, not finished {unfinished:,}, "
        f"received but no row {phantom:,}; swept back (SENDING_OUTCOME_UNKNOWN) {swept:,}"
    )
    log(
        f"inbound: {result.hooks:,} webhooks answered, {len(inbound_rows):,} stored "
        f"({len(set(inbound_rows)):,} senders), {replies:,} replies; failed sends {result.send_failed}, "
        f"failed webhooks {result.hook_failed}"
    )
    verdicts.check(
        "every message sent exactly once or flagged; none lost",
        result.send_failed == 0
        and sends_rows == args.messages
        and silent == lost == unfinished == phantom == 0
        and once + dup_flagged == len(rows),
        f"{once:,} once, {dup_flagged} flagged duplicates, {silent} silent, {lost} lost, {unfinished} unfinished",
    )
    verdicts.check(
        "every webhook stored once and answered by one reply",
        result.hook_failed == 0 and inbound_once and replies == len(hooks),
        f"{result.hooks:,} answered, {len(inbound_rows):,} stored, {replies:,} replies",
    )

    # the rate, as the provider measured it (its clock is this machine's monotonic clock, as ours)
    times = sorted(r.t for r in received)
    if args.keep:
        (tmp / "arrivals.json").write_text(json.dumps(times))
    busiest = fake.max_in_window(args.rate_window) / args.rate_window if times else 0.0
    busiest_1s = fake.max_in_window(1.0) if times else 0.0
    # the seconds in which the gateway had work enough waiting (at least 2 s of it queued): the limit,
    # not the load, set the pace there
    full: list[int] = []
    if times:
        marks = [t for t, _ in backlog]
        for k in range(int(times[0]), int(times[-1])):
            i = bisect.bisect_right(marks, k) - 1
            j = bisect.bisect_right(marks, k + 1) - 1
            if i >= 0 and j >= 0 and min(backlog[i][1], backlog[j][1]) >= 2 * args.rate:
                full.append(bisect.bisect_left(times, k + 1) - bisect.bisect_left(times, k))
    mean = sum(full) / len(full) if full else 0.0
    overall = len(times) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    log(
        f"rate at the fake: busiest 1 s {busiest_1s:.0f} messages, busiest {args.rate_window:g} s {busiest:.1f}/s "
        f"(limit {args.rate}/s); {len(full)} s with a "
        f"backlog of ≥ 2 s: mean {mean:.1f}/s; overall {overall:.1f}/s"
    )
    verdicts.check(
        f"rate limit held across nodes: busiest {args.rate_window:g} s ≤ limit +{args.rate_tolerance:.0%}",
        busiest <= args.rate * (1 + args.rate_tolerance),
        f"{busiest:.1f}/s vs {args.rate}/s ({busiest / args.rate - 1:+.1%})",
    )
    if len(full) >= 5 and not args.no_judge_rate_use:
        verdicts.check(
            f"rate limit used: mean rate ≥ limit −{TOLERANCE:.0%} in the seconds a backlog waited",
            mean >= args.rate * (1 - TOLERANCE),
            f"{mean:.1f}/s over {len(full)} s vs {args.rate}/s ({mean / args.rate - 1:+.1%})",
        )
    elif args.no_judge_rate_use:
        log(f"   (use of the limit not judged, --no-judge-rate-use: {mean:.1f}/s over {len(full)} s with a backlog)")
    else:
        log(f"   (use of the limit not judged: {len(full)} s with a backlog; the client posted more slowly)")

    # one ticker at a time
    killed: Node | None = kill.get("node")
    spans = leadership_intervals(workers, kill.get("wall"), killed, end_wall)
    overlap = overlap_seconds(spans)
    terms = sorted({s[2] for s in samples})
    holders = {s[1] for s in samples if s[1]}
    takeover = None
    if kill:
        later = [s for s in samples if s[0] > kill["at"] and s[1] and s[1] != kill["holder"] and s[3]]
        takeover = later[0][0] - kill["at"] if later else None
    log(
        "ticker: terms "
        + ", ".join(map(str, terms))
        + f"; holders {len(holders)}; leadership per node "
        + "; ".join(f"{k}: " + ", ".join(f"{b - a:.1f} s (term {tm})" for a, b, tm in v) for k, v in spans.items())
        + f"; overlap {overlap:.2f} s"
        + (f"; new leader {takeover:.1f} s after the kill" if takeover is not None else "")
    )
    leader_killed = bool(kill) and bool(kill.get("holder"))
    verdicts.check(
        "one ticker active at a time",
        overlap == 0.0 and sum(len(v) for v in spans.values()) >= 1 and len(terms) <= 1 + int(leader_killed),
        f"{sum(len(v) for v in spans.values())} leaderships, {overlap:.2f} s overlap, terms {terms}",
    )
    if kill:
        verdicts.check(
            f"a new ticker within the lease ({lease_seconds:g} s) + 2 s of the leader's node torn down",
            takeover is not None and takeover <= lease_seconds + 2,
            f"{takeover:.1f} s" if takeover is not None else "no new leader seen",
        )
    if args.kill_at < 1:
        verdicts.check(
            "a worker node torn down mid-run, nothing lost",
            bool(kill) and lost == unfinished == silent == 0,
            f"{kill['node'].name} at {kill['count']:,} received, {swept} messages swept back" if kill else "no kill",
        )
    web_cpu = sum(v for k, v in cpu.items() if k.startswith("web"))
    worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker"))
    log(
        f"CPU: web nodes {web_cpu:.1f} s = {web_cpu / max(1, result.requests) * 1000:.1f} ms per request; "
        f"surviving worker nodes {worker_cpu:.1f} s = {worker_cpu / max(1, len(rows)) * 1000:.2f} ms per message "
        f"(of all; the killed node's CPU is gone with it)"
    )
    log(
        f"elapsed: {end - t0:.1f} s ({posted_at - t0:.1f} s posting); load average {load0} → {load1} "
        f"on {os.cpu_count()} CPUs; logs {tmp if args.keep else '(removed; --keep keeps them)'}"
    )
    if end >= deadline:
        verdicts.check(f"finished within --max-seconds {args.max_seconds:g}", False, f"{left} messages not final")
    verdicts.finish()
    return 0


def number(i: int) -> str:
    return f"254711{i:06d}"  # Kenya, valid mobile numbers


def twilio_inbound(from_: str, text: str, account_sid: str) -> dict[str, str]:
    sid = "SM" + uuid.uuid4().hex
    return {
        "ToCountry": "KE",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": text,
        "To": "+254700000000",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": "+" + from_,
        "ApiVersion": "2010-04-01",
    }


def wait_http(url: str, timeout: float, what: str, log_path: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    tail = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
    raise SystemExit(f"{what} did not answer {url} within {timeout:g} s\n{tail}")


def wait_log(node: Node, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.log_path and text in node.log_path.read_text(errors="replace"):
            return
        if any(p.poll() is not None for p in node.procs):
            break
        time.sleep(0.2)
    tail = node.log_path.read_text(errors="replace")[-3000:] if node.log_path else ""
    raise SystemExit(f"{node.name} did not start within {timeout:g} s\n{tail}")


if __name__ == "__main__":
    sys.exit(main())
