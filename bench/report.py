"""docs/benchmarks.md and docs/img/throughput.png from the JSON of a run (``bench/run.py all`` calls this).

Only the part of the page between the two marker comments is rewritten; the method around it is prose.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, Target, progress, rows_table, targets_table

DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "img" / "throughput.png"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
ORDER = ("codec", "sqlite", "kafka", "rabbitmq", "sqs", "http", "latency", "rss")
CLIENTS = ("pubsubkit", "hand-written", "raw", "faststream", "kombu")
COLORS = {
    "pubsubkit": "#1f77b4",
    "hand-written": "#9467bd",
    "raw": "#ff7f0e",
    "faststream": "#2ca02c",
    "kombu": "#d62728",
}
LABELS = {"raw": "raw client (bytes)", "hand-written": "hand-written service"}
VERSIONS = ("pubsubkit", "confluent-kafka", "pika", "boto3", "faststream", "kombu", "aio-pika", "falcon", "gunicorn")


def load(out: Path) -> list[dict[str, Any]]:
    """The scenarios' JSON documents found in ``out``, in the order of :data:`ORDER`."""
    docs = []
    for name in ORDER:
        path = out / f"{name}.json"
        if path.exists():
            docs.append(json.loads(path.read_text()))
    return docs


def _rows(doc: dict[str, Any]) -> list[Row]:
    return [Row(**r) for r in doc["rows"]]


def _targets(doc: dict[str, Any]) -> list[Target]:
    return [Target(t["name"], t["value"], t["reference"], t["factor"], t["op"]) for t in doc["targets"]]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _rabbitmq_version() -> str:
    try:
        import pika

        from bench.common import amqp_url

        conn = pika.BlockingConnection(pika.URLParameters(amqp_url()))
        version = conn._impl.server_properties.get("version", b"?")
        conn.close()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:
        return "unknown"


def best(rows: list[Row], backend: str, client: str, op: str) -> float | None:
    """The highest figure of a client on a broker for ``emit`` or ``consume`` cases."""
    values = [
        r.value
        for r in rows
        if r.backend == backend
        and r.client == client
        and r.case.startswith(op)
        and r.value
        and r.skipped is None
        and "unconfirmed" not in r.case
    ]
    return max(values) if values else None


def plot(docs: list[dict[str, Any]], path: Path = PLOT) -> Path:
    """Grouped bars, log scale: messages per second per broker and direction, one bar per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for d in docs if d["scenario"] in ("sqlite", "kafka", "rabbitmq", "sqs") for r in _rows(d)]
    groups = [(b, op) for b in ("sqlite", "kafka", "rabbitmq", "sqs") for op in ("emit", "consume")]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.16
    for k, client in enumerate(CLIENTS):
        xs, ys = [], []
        for g, (backend, op) in enumerate(groups):
            v = best(rows, backend, client, op)
            if v:
                xs.append(g + (k - (len(CLIENTS) - 1) / 2) * width)
                ys.append(v)
        ax.bar(xs, ys, width, label=LABELS.get(client, client), color=COLORS[client])
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), [f"{b}\n{op}" for b, op in groups])
    ax.set_ylabel("messages per second (log)")
    ax.set_title("1 KiB events: confirmed emit, consume acknowledged after handling (no bar: skipped)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def section(docs: list[dict[str, Any]]) -> str:
    """The generated Markdown: machine, versions, every scenario's table, then every target."""
    if not docs:
        return "No results yet: run `python bench/run.py all`."
    m = docs[0]["machine"]
    quick = any(d["quick"] for d in docs)
    lines = [
        f"Taken {docs[0]['taken_at']}{' with --quick (small sizes)' if quick else ''} on {m['cores']} cores, "
        f"Python {m['python']}, {m['platform']}, load average {m['load_average']} at the start.",
        "",
        "Versions: " + ", ".join(f"{d} {_version(d)}" for d in VERSIONS) + f"; RabbitMQ server {_rabbitmq_version()}.",
        "",
        f"Plugins disabled: {m.get('disabled_plugins') or 'none'}.",
        "",
        "![throughput per broker and client](img/throughput.png)",
        "",
    ]
    all_targets: list[Target] = []
    for d in docs:
        lines += [f"### {d['scenario']}", "", rows_table(_rows(d)), ""]
        all_targets += _targets(d)
    lines += ["### Targets", "", targets_table(all_targets), ""]
    return "\n".join(lines)


def regenerate(out: Path) -> None:
    """Rewrite the plot and the generated part of docs/benchmarks.md from the JSON in ``out``."""
    docs = load(out)
    progress(f"plot: {plot(docs)}")
    text = DOC.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{DOC}: the markers {BEGIN} / {END} are missing")
    DOC.write_text(pattern.sub(lambda _: f"{BEGIN}\n\n{section(docs)}\n{END}", text))
    progress(f"tables: {DOC}")


if __name__ == "__main__":
    regenerate(ROOT / "bench" / "results")
