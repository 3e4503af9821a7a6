"""A broker that stops answering (SIGSTOP: a hung server or a stalled network), then goes on.

The connection stays open and the kernel takes what is sent, so only pika's heartbeat notices. This pauses the
shared test server once, for at most about half a minute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pubsubkit_rabbitmq import RabbitTransport
from pubsubkit_rabbitmq._options import DEFAULT_HEARTBEAT
from rabbitmq_support import with_query

import pubsubkit
from pubsubkit.testing import EventKit, unique_name, wait_until
from pubsubkit.transport import Delivery


def test_the_heartbeat_is_ours_unless_the_url_gives_one() -> None:
    for url, heartbeat in (("amqp://localhost/%2F", DEFAULT_HEARTBEAT), ("amqp://localhost/%2F?heartbeat=0", 0)):
        t = RabbitTransport(url)
        try:
            assert t.settings.params.heartbeat == heartbeat
        finally:
            t.close()


def test_a_consumer_gives_up_a_paused_broker_and_comes_back(
    amqp_url: str, script_server_control: Callable[[str], Any]
) -> None:
    kit = EventKit()
    ping = kit.event_type()
    url = with_query(amqp_url, exchange=unique_name("ex"), queue_expires="300")
    server = script_server_control("rabbitmq")
    with pubsubkit.open_broker(url, codec=kit.codec) as broker:
        consumer = broker.transport.consumer(kit.name("g"), None)
        lost: list[BaseException] = []

        def receive_until_lost() -> None:
            try:
                while True:
                    consumer.receive(10, 0.5)
            except pubsubkit.ConnectionLost as exc:
                lost.append(exc)

        try:
            server.pause()
            try:
                watcher = threading.Thread(target=receive_until_lost, daemon=True)
                watcher.start()
                # the heartbeat gives the connection up within 2 x (15 + 5) s; RabbitMQ's own 60 s would not
                watcher.join(2 * (DEFAULT_HEARTBEAT + 5) + 5)
                assert lost, "the consumer still waits on the paused broker"
            finally:
                server.resume()
            sent = broker.emitter(retry_for=60).emit(ping(n=1))
            got: list[Delivery] = []

            def arrived() -> bool:
                try:
                    got.extend(consumer.receive(10, 0.2))
                except pubsubkit.ConnectionLost:
                    return False
                return sent.id in {d.envelope.id for d in got if d.envelope}

            wait_until(arrived, 60, "the message published after the pause")
            consumer.ack(got)
        finally:
            consumer.close()
