"""The documentation under docs/ is kept true by these tests.

- Every ```python block of a page runs: the untitled blocks of one page in order, in one namespace, in an
  empty working directory; a block with ``title="path"`` is a file, written to that path first.
- The ```sh blocks of getting-started.md run too (the ``pubsubkit`` command), and its ``greeter.py`` stops
  cleanly on SIGTERM.
- The plugin of writing-a-plugin.md serves emit and listen through a fresh plugin manager.
- Every hook of hookspecs.py has a section in hooks.md headed by its signature, and every metric of
  METRIC_NAMES a row in concepts.md listing its labels: a new hook or metric fails here until documented.
- Relative links between pages point at existing files and headings.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import tomllib
import types
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from prometheus_client import CollectorRegistry

import pubsubkit
from pubsubkit.metrics import METRIC_NAMES, MetricsPlugin
from pubsubkit.plugin import Backends, hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))

# Pages whose blocks need more than running them; each has a test of its own below.
SPECIAL = ("getting-started.md", "hooks.md", "testing.md", "writing-a-plugin.md")

HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("pubsubkit_") and callable(getattr(hookspecs, n)))


# --- reading pages ----------------------------------------------------------------------------------------


@attrs.frozen
class Block:
    lang: str
    title: str | None
    code: str
    line: int  # line number of the first line of code in the page


_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)(.*)$")
_TITLE = re.compile(r'title="([^"]+)"')


def read(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def blocks(page: str, lang: str | None = None) -> list[Block]:
    """The fenced code blocks of ``page`` (only those of ``lang`` if given)."""
    out: list[Block] = []
    lines = read(page).splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, info, rest = m.groups()
        title = _TITLE.search(rest)
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        assert end < len(lines), f"{page}:{i + 1}: code block never closed"
        code = "\n".join(lines[start:end]) + "\n"
        out.append(Block(info, title.group(1) if title else None, code, start + 1))
        i = end + 1
    return [b for b in out if lang is None or b.lang == lang]


def prose(page: str) -> str:
    """The page without its fenced code blocks and inline code."""
    text = re.sub(r"^(`{3,}).*?^\1\s*$", "", read(page), flags=re.M | re.S)
    return re.sub(r"`[^`\n]+`", "", text)


def sections(page: str) -> dict[str, str]:
    """Heading text (without # and backticks) -> the text up to the next heading of the same or higher level."""
    text = read(page)
    text_no_code = re.sub(r"^(`{3,}).*?^\1\s*$", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.M | re.S)
    heads = [(m.start(), len(m.group(1)), m.group(2)) for m in re.finditer(r"^(#{1,6}) +(.+)$", text_no_code, re.M)]
    out = {}
    for i, (pos, level, title) in enumerate(heads):
        end = next((p for p, lv, _ in heads[i + 1 :] if lv <= level), len(text))
        out[title.replace("`", "").strip()] = text[pos:end]
    return out


# --- running pages ----------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory on sys.path (and its src/), leaving no imported module behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        mod = sys.modules[name]
        if str(getattr(mod, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write_files(page: str, where: Path) -> dict[str, Path]:
    """Write the titled python blocks of ``page`` below ``where``; title -> path."""
    files = {}
    for b in blocks(page, "python"):
        if b.title is not None:
            path = where / b.title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(b.code, encoding="utf-8")
            files[b.title] = path
    return files


def close_all(ns: dict[str, Any]) -> None:
    """Stop listeners and relays, close brokers and stores a failed page left open."""
    for value in list(ns.values()):
        if isinstance(value, pubsubkit.Listener):
            value.close(timeout=5)
        elif isinstance(value, pubsubkit.OutboxRelay):
            value.stop(timeout=5)
    for value in list(ns.values()):
        if isinstance(value, pubsubkit.Broker | pubsubkit.Store):
            value.close()


def run_page(page: str, where: Path) -> dict[str, Any]:
    """Write the page's files, then run its untitled python blocks in order in one namespace."""
    write_files(page, where)
    ns: dict[str, Any] = {"__name__": "docs_" + re.sub(r"\W", "_", page.removesuffix(".md"))}
    ok = False
    try:
        for b in blocks(page, "python"):
            if b.title is None:
                # Padding keeps line numbers: a traceback points at the line of the page.
                exec(compile("\n" * (b.line - 1) + b.code, str(DOCS / page), "exec"), ns)
        ok = True
        return ns
    finally:
        if not ok:
            close_all(ns)


@pytest.mark.parametrize("page", [p for p in PAGES if p not in SPECIAL and blocks(p, "python")])
def test_python_blocks_run(page: str, workdir: Path) -> None:
    close_all(run_page(page, workdir))


def test_code_blocks_name_their_language() -> None:
    for page in PAGES:
        for b in blocks(page):
            assert b.lang, f"{page}:{b.line - 1}: say which language the block is in (```python, ```sh, ```text...)"


# --- getting-started.md -----------------------------------------------------------------------------------


def test_getting_started_runs_top_to_bottom(workdir: Path) -> None:
    page = "getting-started.md"
    ns = run_page(page, workdir)
    close_all(ns)
    assert ns["guests"].store is ns["store"]
    assert (workdir / "data" / "bus.db").exists()

    # Then the shell blocks, against what the Python left behind.
    with pubsubkit.open_broker(f"sqlite:///{workdir}/data/bus.db") as broker:
        [letter] = broker.transport.dead_letters("strict")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    shells = blocks(page, "sh")
    assert shells
    out = ""
    for b in shells:
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + b.code],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{page}:{b.line}: {done.stderr}"
        out += done.stdout
    assert re.search(r"^broker +sqlite +pubsubkit ", out, re.M)  # backends
    assert '"payload": {"who": "world"}' in out  # tail printed the first event of the log
    assert '"reason": "failed"' in out  # dlq listed the dead letter
    assert f"replayed {letter.id}" in out


def test_getting_started_program_drains_on_sigterm(workdir: Path) -> None:
    files = write_files("getting-started.md", workdir)
    script = files["greeter.py"]
    with pubsubkit.open_broker(f"sqlite:///{workdir}/data/bus.db") as broker:
        # Published by name, as another program would: no class needed here.
        envelope = pubsubkit.Envelope(id=pubsubkit.new_id(), name="greeted", payload=b'{"who": "signals"}', key="s")
        broker.emitter().publish([envelope])
    proc = subprocess.Popen(
        [sys.executable, script.name],
        cwd=workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    try:
        assert lines.get(timeout=30).strip() == "hello signals"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    # It acknowledged before leaving: the group has nothing left.
    with pubsubkit.open_broker(f"sqlite:///{workdir}/data/bus.db") as broker:
        consumer = broker.transport.consumer("greeter", None)
        try:
            assert consumer.receive(10, 0.05) == []
        finally:
            consumer.close()


def _pump(stream: Any, into: queue.SimpleQueue[str]) -> None:
    for line in stream:
        into.put(line)


# --- concepts.md: metrics ---------------------------------------------------------------------------------


def exported_metrics() -> dict[str, set[str]]:
    """Exposed name -> label names of every metric the built-in plugin reports, after one of each event."""
    registry = CollectorRegistry()
    plugin = MetricsPlugin(registry)
    env = pubsubkit.Envelope(id=pubsubkit.new_id(), name="greeted", payload=b"{}")
    plugin.pubsubkit_emitted(envelopes=[env], url="memory://", seconds=0.001)
    plugin.pubsubkit_received(envelopes=[env], group="g")
    for outcome in ("retry", "ok"):
        plugin.pubsubkit_handled(envelope=env, group="g", outcome=outcome, seconds=0.001, attempt=1)
    letter = pubsubkit.DeadLetter(
        group="g", reason="poison", error="DecodeError", attempts=1, original_name=None, envelope=None
    )
    plugin.pubsubkit_dead_lettered(letter=letter)
    plugin.pubsubkit_outbox_relayed(count=1, pending=2, url="memory://")
    plugin.pubsubkit_consumer_lag(group="g", lag={"0": 3}, url="memory://")
    out = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        assert family.samples, f"{name} has no samples: make exported_metrics() report one"
        out[name] = labels
    return out


def metric_rows() -> dict[str, tuple[str, set[str]]]:
    """Metric name -> (type, labels) from the metrics table of concepts.md."""
    rows = {}
    for line in sections("concepts.md")["Metrics"].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(pubsubkit_\w+)`", cells[0]) if len(cells) == 4 else None
        if m:
            rows[m.group(1)] = (cells[1], set(re.findall(r"`(\w+)`", cells[2])))
    return rows


def test_metric_names_are_what_the_plugin_exports() -> None:
    assert set(exported_metrics()) == set(METRIC_NAMES)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_every_metric_is_documented_with_its_labels(name: str) -> None:
    rows = metric_rows()
    assert name in rows, f"concepts.md, section Metrics: add a table row for {name}"
    kind, labels = rows[name]
    assert labels == exported_metrics()[name], f"concepts.md: the labels of {name}"
    assert kind in ("counter", "gauge", "histogram")
    assert kind == "counter" or not name.endswith("_total")


def test_capabilities_are_documented_with_their_defaults() -> None:
    text = sections("concepts.md")["Backends by URL and capabilities"]
    for field in attrs.fields(pubsubkit.plugin.BrokerCapabilities):
        default = str(field.default).lower()
        assert re.search(rf"^\| `{field.name}` \| {default} \|", text, re.M), f"concepts.md: capability {field.name}"


def test_retry_policy_fields_are_documented() -> None:
    text = sections("concepts.md")["Retries and dead letters"]
    for field in attrs.fields(pubsubkit.RetryPolicy):
        assert f"| `{field.name}` |" in text, f"concepts.md: RetryPolicy.{field.name}"
    for field in attrs.fields(pubsubkit.DeadLetter):
        assert f"| `{field.name}` |" in text, f"concepts.md: DeadLetter.{field.name}"


# --- hooks.md ---------------------------------------------------------------------------------------------


def signature_of(hook: str) -> str:
    return hook + str(inspect.signature(getattr(hookspecs, hook))).replace("'", "")


def test_hooks_exist() -> None:
    assert len(HOOKS) >= 7


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_headed_by_its_signature(hook: str) -> None:
    found = sections("hooks.md")
    heading = signature_of(hook)
    assert heading in found, f"hooks.md: add a section headed ### `{heading}`"
    text = found[heading]
    for param in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert f"- `{param}`:" in text, f"hooks.md, {hook}: describe the parameter {param}"
    assert re.search(rf"^def {hook}\(", text, re.M), f"hooks.md, {hook}: add an example implementation"


def test_hooks_md_has_no_section_for_a_hook_that_does_not_exist() -> None:
    documented = {h.split("(")[0] for h in sections("hooks.md") if h.startswith("pubsubkit_")}
    assert documented == set(HOOKS)


@pubsubkit.event("docsHookChecked")
@attrs.frozen
class HookChecked:
    n: int


def test_hook_examples_are_a_working_plugin(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    ns = run_page("hooks.md", workdir)
    plugin = types.ModuleType("docs_hooks")
    plugin.__dict__.update(ns)
    pm = pubsubkit.get_plugin_manager(load_entrypoints=False, metrics_registry=CollectorRegistry())
    pm.register(plugin, name="docs-hooks")  # checks each implementation against its specification
    for hook in HOOKS:
        assert plugin in [i.plugin for i in getattr(pm.hook, hook).get_hookimpls()], hook

    caplog.set_level(logging.DEBUG, logger="myapp.pubsub")
    with pytest.raises(pubsubkit.ConfigError, match="no options"):
        pubsubkit.open_broker("loopback://docs-hooks", pm=pm, colour="blue")
    broker = pubsubkit.open_broker("loopback://docs-hooks", pm=pm)
    store = pubsubkit.open_store("loopback://docs-hooks", pm=pm)
    try:
        listener = broker.listener("checker", retry=pubsubkit.RetryPolicy(attempts=2, initial=0.01))
        done = threading.Event()

        headers: list[dict[str, str]] = []

        @listener.on(HookChecked)
        def check(event: HookChecked, msg: pubsubkit.Message) -> None:
            headers.append({**msg.envelope.headers, **msg.reply_headers()})
            if event.n == 1:
                raise ValueError("one is not allowed")
            if event.n == 2:  # after 1, which has the same key
                done.set()

        broker.emitter().emit_many([(HookChecked(1), "a"), (HookChecked(2), "a")])
        with store.unit_of_work() as uow:
            uow.emit(HookChecked(3), key="b")
        broker.relay(store).drain()
        listener.start()
        assert done.wait(10)
        listener.close()
        # The loopback example cannot tell a group's lag (Transport.lag is None): the hook is called as a
        # listener's lag thread calls it.
        pm.hook.pubsubkit_consumer_lag(group="checker", lag={"log": 0}, url="loopback://docs-hooks")
        assert [letter.reason for letter in broker.transport.dead_letters("checker")] == ["failed"]
        # the middleware: every publish (emitter and relay) stamped, every handler call timed and its replies marked
        assert headers
        assert all(h.get("x-origin") == "myapp" for h in headers), headers
        assert all(h.get("x-handled-by") == "checker" for h in headers), headers
        assert set(ns["handler_seconds"]) == {"check"}
    finally:
        broker.close()
        store.close()
    called = {r.funcName for r in caplog.records if r.name == "myapp.pubsub"}
    assert called >= {h for h in HOOKS if not h.startswith("pubsubkit_register_")}


# --- writing-a-plugin.md ----------------------------------------------------------------------------------

PLUGIN_PAGE = "writing-a-plugin.md"


@pubsubkit.event("docsQueued")
@attrs.frozen
class Queued:
    n: int


def test_plugin_page_runs(workdir: Path) -> None:
    close_all(run_page(PLUGIN_PAGE, workdir))


def test_plugin_serves_emit_and_listen_on_a_fresh_plugin_manager(workdir: Path) -> None:
    write_files(PLUGIN_PAGE, workdir)
    plugin = importlib.import_module("pubsubkit_queue")
    pm = pubsubkit.get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    spec = Backends(pm).broker_spec("queue://x")
    assert spec.distribution == "pubsubkit-queue"
    with pytest.raises(pubsubkit.ConfigError, match="colour"):
        pubsubkit.open_broker("queue://x", pm=pm, colour="blue")

    with pubsubkit.open_broker(f"queue://{pubsubkit.new_id()}", pm=pm) as broker:
        assert broker.capabilities == plugin.CAPABILITIES
        # A delivery not settled when its consumer leaves comes back, counted as a second attempt.
        first = broker.transport.consumer("g", None)
        broker.emitter().emit(Queued(0), key="k")
        [delivery] = first.receive(10, 1.0)
        first.close()
        second = broker.transport.consumer("g", None)
        [again] = second.receive(10, 1.0)
        assert (again.envelope, again.attempt) == (delivery.envelope, 2)
        second.ack([again])
        assert second.receive(10, 0.01) == []
        second.close()

        listener = broker.listener("g", retry=pubsubkit.RetryPolicy(attempts=2, initial=0.01))
        seen: list[int] = []
        done = threading.Event()

        @listener.on(Queued)
        def handle(event: Queued, msg: pubsubkit.Message) -> None:
            if event.n == 13:
                raise ValueError("unlucky")
            seen.append(event.n)
            if len(seen) == 20:
                done.set()

        other = broker.transport.consumer("other", None)  # another group gets every message too
        broker.emitter().emit_many([(Queued(n), str(n % 3)) for n in range(21)])
        listener.start()
        assert done.wait(10)
        assert len(other.receive(100, 1.0)) == 21
        other.close()
        listener.close()
        assert sorted(seen) == [n for n in range(21) if n != 13]
        [letter] = broker.transport.topic.dead
        assert (letter.reason, letter.attempts, letter.original_name) == ("failed", 2, "docsQueued")
    with pytest.raises(pubsubkit.Closed):
        broker.emitter(retry_for=30).emit(Queued(1))


def test_plugin_pyproject_declares_the_entry_point() -> None:
    [toml] = [b for b in blocks(PLUGIN_PAGE, "toml") if b.title == "pyproject.toml"]
    project = tomllib.loads(toml.code)["project"]
    assert project["entry-points"]["pubsubkit"] == {"queue": "pubsubkit_queue"}
    [module] = [b for b in blocks(PLUGIN_PAGE, "python") if b.title and "pubsubkit_queue" in b.title]
    assert module.title == "src/pubsubkit_queue/__init__.py"


def test_conformance_example_subclasses_the_suite() -> None:
    [example] = [b for b in blocks(PLUGIN_PAGE, "python") if b.title == "tests/test_conformance.py"]
    code = compile(example.code, f"{PLUGIN_PAGE}:{example.line}", "exec")
    testing = importlib.import_module("pubsubkit.testing")
    if not hasattr(testing, "MessagingSuite"):
        pytest.skip("pubsubkit.testing has no MessagingSuite yet")
    ns: dict[str, Any] = {"__name__": "docs_conformance_example"}
    exec(code, ns)
    assert issubclass(ns["TestQueueMessaging"], testing.MessagingSuite)


# --- all pages: the table of contents and links -----------------------------------------------------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_EXTERNAL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def slugify(heading: str) -> str:
    """The anchor Python-Markdown's toc extension (MkDocs' default) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: str) -> set[str]:
    return {slugify(h) for h in sections(page)}


def links(page: str) -> list[str]:
    return _LINK.findall(prose(page))


def test_pages_exist() -> None:
    expected = {
        "index.md",
        "getting-started.md",
        "concepts.md",
        "hooks.md",
        "writing-a-plugin.md",
        "backends/memory.md",
        "backends/sqlite.md",
    }
    assert expected <= set(PAGES)
    assert set(SPECIAL) <= set(PAGES)


def test_index_links_every_page() -> None:
    linked = {target.split("#")[0] for target in links("index.md")}
    assert linked >= set(PAGES) - {"index.md"}


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_point_at_existing_files_and_headings(page: str) -> None:
    for target in links(page):
        if _EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        file = (DOCS / page).parent / path if path else DOCS / page
        assert file.resolve().is_file(), f"{page}: link to {target}: no such file"
        linked = file.resolve().relative_to(DOCS).as_posix()  # stays inside docs/
        if anchor:
            assert anchor in anchors(linked), f"{page}: link to {target}: {linked} has no such heading"


# --- operations: the metrics table and the Grafana dashboard ----------------------------------------------

ROOT = DOCS.parent
MYEVENTS_METRICS = (
    "myevents_http_requests_total",
    "myevents_http_request_seconds",
    "myevents_bookings_count_total",
    "myevents_seats_per_booking",
    "myevents_bookings_refused_total",
    "myevents_bookings_cancelled_total",
)


def test_the_myevents_metrics_listed_here_are_those_the_services_register() -> None:
    from myevents.booking.metrics import BookingMetrics
    from myevents.web.middleware import RequestContext

    registry = CollectorRegistry()
    BookingMetrics(registry)
    RequestContext(registry, max_body=1024)
    names = {f.name + ("_total" if f.type == "counter" else "") for f in registry.collect()}
    assert names == set(MYEVENTS_METRICS)


@pytest.mark.parametrize("metric", [*METRIC_NAMES, *MYEVENTS_METRICS])
def test_every_metric_is_in_the_operations_page_and_the_dashboard(metric: str) -> None:
    page = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert f"| `{metric}` |" in page, f"{metric} has no row in docs/operations.md"
    dashboard = (ROOT / "deploy" / "grafana" / "myevents.json").read_text(encoding="utf-8")
    assert re.search(rf"\b{metric}(_bucket)?\b", dashboard), (
        f"{metric} has no panel: edit deploy/grafana/make_dashboard.py"
    )


def test_the_dashboard_is_what_its_script_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_dashboard", ROOT / "deploy" / "grafana" / "make_dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = json.loads((ROOT / "deploy" / "grafana" / "myevents.json").read_text(encoding="utf-8"))
    assert written == module.dashboard(), "run: python deploy/grafana/make_dashboard.py"


def _script(name: str) -> Any:
    """The module of ``scripts/<name>.py``, loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_http_reference_is_what_its_script_writes() -> None:
    written = (DOCS / "http-reference.md").read_text(encoding="utf-8")
    assert written == _script("http_reference").page(), "run: .venv/bin/python scripts/http_reference.py"


def test_every_test_the_guarantees_page_names_exists() -> None:
    """A guarantee is only as good as its test: each `test_...` the page names is defined somewhere."""
    page = (DOCS / "guarantees.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_\w+)`", page))
    sources = [*(ROOT / "src").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]
    defined = {m for path in sources for m in re.findall(r"def (test_\w+)", path.read_text(encoding="utf-8"))}
    assert named, "the page names no test"
    assert named <= defined, f"named on the page but defined nowhere: {sorted(named - defined)}"
    scenarios = re.findall(r'fault suite "([^"]+)"', page)
    faults = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests" / "faults").glob("test_*.py"))
    missing = [s for s in scenarios if s not in faults and s.split(" (")[0] not in faults]
    assert not missing, f"fault scenarios named on the page but not in the fault suite: {missing}"


def test_the_conformance_page_lists_every_case() -> None:
    """docs/conformance.md has a row for each case of the suite, and no row for a case that does not exist."""
    from pubsubkit.testing import MessagingSuite, RepositorySuite

    page = (DOCS / "conformance.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(test_\w+)` \|", page, flags=re.M))
    cases = {n for cls in (MessagingSuite, RepositorySuite) for n in dir(cls) if n.startswith("test_")}
    assert listed == cases


def _api_reference() -> Any:
    return _script("api_reference")


def test_the_event_catalogue_is_what_its_script_writes() -> None:
    written = (DOCS / "events.md").read_text(encoding="utf-8")
    assert written == _script("event_catalogue").page(), "run: .venv/bin/python scripts/event_catalogue.py"


def test_the_api_reference_is_what_its_script_writes() -> None:
    written = (DOCS / "api.md").read_text(encoding="utf-8")
    assert written == _api_reference().page(), "run: .venv/bin/python scripts/api_reference.py"


def test_the_api_reference_lists_every_public_name_once() -> None:
    reference = _api_reference()
    assert reference.missing_from_sections() == set(), "add them to APPLICATION in scripts/api_reference.py"
    page = (DOCS / "api.md").read_text(encoding="utf-8")
    for namespace in (pubsubkit, pubsubkit.plugin):
        for name in namespace.__all__:
            module = reference.defining_module(namespace, name)
            assert f"::: {module}.{name}\n" in page or f"### `{name}`\n" in page, f"{namespace.__name__}.{name}"


@pytest.mark.parametrize("namespace", ["pubsubkit", "pubsubkit.plugin"])
def test_every_public_name_has_a_docstring(namespace: str) -> None:
    """A class or function has a docstring, and so has each public method and property of a class (the API
    reference shows only documented members); a constant or type alias a ``#:`` comment above its definition."""
    reference = _api_reference()
    package = importlib.import_module(namespace)
    undocumented = [n for n in package.__all__ if not reference.documentation_of(package, n).strip()]
    for name in package.__all__:
        cls = getattr(package, name)
        if not inspect.isclass(cls) or issubclass(cls, BaseException):
            continue
        for member, value in vars(cls).items():
            fn = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if not member.startswith("_") and inspect.isfunction(fn) and not (fn.__doc__ or "").strip():
                undocumented.append(f"{name}.{member}")
    assert undocumented == [], f"public names of {namespace} without documentation: {undocumented}"


def test_the_testing_guide_tests_pass(workdir: Path) -> None:
    """docs/testing.md's service and its tests, written out and run with pytest as a user would."""
    files = write_files("testing.md", workdir)
    assert set(files) == {"shipping.py", "test_shipping.py"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shipping.py"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(workdir)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
