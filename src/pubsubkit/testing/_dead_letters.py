"""Messaging case 26: the ``pubsubkit dlq`` command lists and replays a group's dead letters, in another process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

from pubsubkit.api import Broker
from pubsubkit.errors import FatalError
from pubsubkit.listener import Message
from pubsubkit.testing._base import Listeners, MessagingFixtures, require
from pubsubkit.testing._failures import stored_letters
from pubsubkit.testing.helpers import Collector, EventKit

__all__ = ["DeadLetterCommandCases"]


def _dlq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pubsubkit.cli", "dlq", *args], capture_output=True, text=True, timeout=120, check=False
    )


class DeadLetterCommandCases(MessagingFixtures):
    def test_26_dlq_command(self, broker_url: str, broker: Broker, kit: EventKit, listeners: Listeners) -> None:
        """``pubsubkit dlq URL --group G`` lists the group's dead letters with their id, reason, error, attempts,
        original name and group; ``--replay ID`` publishes the message again, the group handles it, and the
        letter is gone."""
        require(broker, "dead_letter_store", "the broker keeps no dead letters to list or replay")
        require(broker, "multi_process", "the command runs in another process")
        ping = kit.event_type()
        group = kit.name("g")
        healed = threading.Event()

        def refuse(event: Any, msg: Message) -> None:
            if not healed.is_set():
                raise FatalError("not yet")

        got = Collector(fail=refuse)
        listeners.start(broker, group, [(ping, got)])
        bad = broker.emitter().emit(ping(n=1), key="k")
        [letter] = stored_letters(broker, group, 1)
        assert letter.id is not None

        listed = _dlq(broker_url, "--group", group)
        assert listed.returncode == 0, listed.stderr
        [line] = [json.loads(x) for x in listed.stdout.splitlines() if x.startswith("{")]
        assert line["id"] == letter.id
        assert (line["group"], line["reason"], line["attempts"], line["original_name"]) == (
            group,
            "fatal",
            1,
            kit.name("ping"),
        )
        assert line["message_id"] == bad.id
        assert line["error"] == "FatalError: not yet"
        assert "--replay ID" in listed.stderr

        healed.set()
        replayed = _dlq(broker_url, "--replay", letter.id)
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.strip() == f"replayed {letter.id}"
        got.wait_for([bad.id])
        assert broker.transport.dead_letters(group) == []
