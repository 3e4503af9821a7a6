"""What every scenario shares: the 1 KiB event, broker URLs, timing, result rows, targets, tables and JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

import pubsubkit

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD_BYTES = 1024


@pubsubkit.event("benchTicket")
@attrs.frozen
class Ticket:
    """The benchmark event: a few typed fields and a text padding it to about 1 KiB of JSON."""

    id: str
    event_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "eventId"})
    user_id: str = attrs.field(metadata={pubsubkit.WIRE_NAME: "userId"})
    seats: int
    price_cents: int = attrs.field(metadata={pubsubkit.WIRE_NAME: "priceCents"})
    tags: list[str]
    note: str


@pubsubkit.event("benchWarmUp")
@attrs.frozen
class WarmUp:
    """Published once before a measured run, so that every client's producer is started before its clock
    (an idempotent Kafka producer waits half a second for its producer id before its first delivery); no
    benchmark handler listens to it."""

    n: int = 0


def ticket(i: int) -> Ticket:
    """The ``i``-th benchmark event; its JSON is :data:`PAYLOAD_BYTES` long, give or take a few bytes."""
    base = Ticket(
        id=f"t{i:08d}",
        event_id="ev-0001",
        user_id=f"user{i % 97}",
        seats=1 + i % 4,
        price_cents=4200,
        tags=["bench", "ticket"],
        note="",
    )
    size = len(pubsubkit.codec.converter.dumps(base))
    return attrs.evolve(base, note="x" * max(0, PAYLOAD_BYTES - size))


def payload() -> bytes:
    """The raw-client message body: the JSON of one benchmark event (1 KiB)."""
    return pubsubkit.codec.converter.dumps(ticket(0))


def run_name(prefix: str) -> str:
    """A fresh topic, queue or group name: every run works on names of its own."""
    return f"bench-{prefix}-{uuid.uuid4().hex[:8]}"


# --- the servers and broker URLs: one function per broker, the only place that knows their options ------------


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def amqp_url() -> str:
    return os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def aws_endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")


def aws_env() -> None:
    """Any key and region do for the emulator; keep the caller's if set."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def kafka_url(topic: str) -> str:
    """The pubsubkit URL of a Kafka topic (consumer settings a one-node test broker needs to join quickly)."""
    options = "session.timeout.ms=6000&heartbeat.interval.ms=500"
    return f"kafka://{kafka_bootstrap()}?topic={topic}&{options}"


def rabbitmq_url(exchange: str) -> str:
    """The pubsubkit URL of a RabbitMQ exchange (its groups' queues go a minute after their last consumer)."""
    amqp = amqp_url()
    return f"{amqp}{'&' if '?' in amqp else '?'}exchange={exchange}&queue_expires=60"


def sqs_url(prefix: str) -> str:
    """The pubsubkit URL of SQS queues named with ``prefix``."""
    aws_env()
    return f"sqs://?endpoint_url={aws_endpoint()}&region=us-east-1&prefix={prefix}"


def sqlite_url(path: Path) -> str:
    """The pubsubkit URL of an embedded SQLite bus."""
    return f"sqlite:///{path}"


def wait_server(backend: str, timeout: float = 60.0) -> bool:
    """Wait until a broker's test server accepts connections (they are shared, and now and then restarted)."""
    import socket
    from urllib.parse import urlsplit

    address = {"kafka": f"tcp://{kafka_bootstrap()}", "rabbitmq": amqp_url(), "sqs": aws_endpoint()}[backend]
    parts = urlsplit(address)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2).close()
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(1)
            continue
        return True


BROKER_URLS: dict[str, Callable[[str], str]] = {"kafka": kafka_url, "rabbitmq": rabbitmq_url, "sqs": sqs_url}


def installed_scheme(url: str) -> str | None:
    """``None`` when pubsubkit can open ``url``'s scheme, else the skip reason."""
    from pubsubkit.api import default_plugin_manager
    from pubsubkit.plugin import Backends

    try:
        Backends(default_plugin_manager()).broker_spec(url)
    except pubsubkit.ConfigError as exc:
        return f"skipped: plugin not installed ({str(exc).splitlines()[0]})"
    return None


# --- progress, results, targets -------------------------------------------------------------------------------


def progress(message: str) -> None:
    """One line on stderr while a scenario runs."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@attrs.define
class Row:
    """One measured figure (or a skip): ``rate`` in messages or requests per second, or another ``unit``."""

    scenario: str
    backend: str
    client: str
    case: str
    value: float | None = None
    unit: str = "msg/s"
    n: int = 0
    seconds: float = 0.0
    skipped: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class Target:
    """A goal stated as ``value <op> factor * reference``; ``met`` is ``None`` when a side is missing."""

    name: str
    value: float | None
    reference: float | None
    factor: float
    op: str = ">="  # or "<=" for latencies, sizes and times

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.reference in (None, 0):
            return None
        return self.value / self.reference

    @property
    def met(self) -> bool | None:
        if self.value is None or self.reference is None:
            return None
        limit = self.factor * self.reference
        return self.value >= limit if self.op == ">=" else self.value <= limit

    def as_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "ratio": self.ratio, "met": self.met}


def rate_row(scenario: str, backend: str, client: str, case: str, n: int, seconds: float, **extra: Any) -> Row:
    row = Row(scenario, backend, client, case, n / seconds if seconds > 0 else None, "msg/s", n, seconds)
    row.extra.update(extra)
    progress(f"  {backend:8} {client:10} {case:28} {row.value or 0:>10,.0f} msg/s  ({n} in {seconds:.2f} s)")
    return row


def skip_row(scenario: str, backend: str, client: str, case: str, reason: str) -> Row:
    """A figure not taken; the table shows the reason up to its first parenthesis, the JSON all of it."""
    progress(f"  {backend:8} {client:10} {case:28} {reason}")
    short = reason.split(" (", 1)[0]
    return Row(scenario, backend, client, case, skipped=short, extra={"detail": reason} if short != reason else {})


def guarded(scenario: str, backend: str, client: str, case: str, fn: Callable[[], Row | list[Row]]) -> list[Row]:
    """Run one measurement, once more if it fails (the servers are shared); a second error becomes a skipped
    row with the reason, so the other figures survive."""
    for attempt in (1, 2):
        try:
            got = fn()
        except Exception as exc:
            if attempt == 1:
                progress(f"  {backend:8} {client:10} failed ({type(exc).__name__}: {exc}), trying once more")
                time.sleep(10)
                continue
            return [skip_row(scenario, backend, client, case, f"failed: {type(exc).__name__}: {exc}"[:300])]
        return got if isinstance(got, list) else [got]
    raise AssertionError("unreachable")


def find(rows: Iterable[Row], backend: str, client: str, case: str) -> float | None:
    for r in rows:
        if r.backend == backend and r.client == client and r.case == case and r.skipped is None:
            return r.value
    return None


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("us", "ms", "MB") or abs(value) < 100:
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def table(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """A Markdown table, readable in a terminal as it is."""
    widths = [max(len(h), *(len(str(line[i])) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines]
    return "\n".join(out)


def rows_table(rows: Sequence[Row]) -> str:
    lines = [
        (r.backend, r.client, r.case, r.skipped or fmt(r.value, r.unit), "" if r.skipped else r.unit, str(r.n or ""))
        for r in rows
    ]
    return table(("backend", "client", "case", "value", "unit", "n"), lines)


def targets_table(targets: Sequence[Target]) -> str:
    def verdict(t: Target) -> str:
        return {True: "yes", False: "NO", None: "n/a"}[t.met]

    lines = [
        (t.name, fmt(t.value), fmt(t.reference), fmt(t.ratio), f"{t.op} {t.factor:g}x", verdict(t)) for t in targets
    ]
    return table(("target", "measured", "reference", "ratio", "goal", "met"), lines)


def machine() -> dict[str, Any]:
    """The machine a run was taken on."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "disabled_plugins": os.environ.get("PUBSUBKIT_DISABLE_PLUGINS", ""),
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def write_json(out: Path, scenario: str, rows: Sequence[Row], targets: Sequence[Target], quick: bool) -> Path:
    """Write one scenario's figures to ``out/<scenario>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{scenario}.json"
    doc = {
        "scenario": scenario,
        "quick": quick,
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "rows": [attrs.asdict(r) for r in rows],
        "targets": [t.as_dict() for t in targets],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
