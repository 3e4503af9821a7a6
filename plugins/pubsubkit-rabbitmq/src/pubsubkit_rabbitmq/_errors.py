"""pika's errors as pubsubkit's, and the connection they come from: shared by the transport and the consumer."""

from __future__ import annotations

import pika
import pika.exceptions

from pubsubkit.errors import ConfigError, ConnectionLost, PubsubkitError
from pubsubkit.plugin import redact
from pubsubkit_rabbitmq._options import Settings

__all__ = ["DRIVER_ERRORS", "connect", "translate"]

#: Errors of pika that mean the connection or channel is gone.
DRIVER_ERRORS = (pika.exceptions.AMQPError, OSError)


def connect(settings: Settings) -> pika.BlockingConnection:
    """A blocking connection; ConnectionLost when the broker cannot be reached."""
    try:
        return pika.BlockingConnection(settings.params)
    except DRIVER_ERRORS as exc:
        raise ConnectionLost(f"{redact(settings.url)}: cannot connect: {exc!r}") from exc


def translate(settings: Settings, exc: BaseException, what: str) -> PubsubkitError:
    """A driver error as pubsubkit's: a refused declaration is a ConfigError, anything else a lost connection."""
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code in (403, 406):
        return ConfigError(f"{redact(settings.url)}: {what}: the broker refused: {exc.reply_text}")
    return ConnectionLost(f"{redact(settings.url)}: {what}: {exc!r}")
