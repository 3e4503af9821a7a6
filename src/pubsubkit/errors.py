"""The errors pubsubkit raises.

One base class, a handful of semantic subclasses. Backends translate their driver's exceptions at the edge
(``raise ConnectionLost(...) from exc``) so callers never need to import a driver to catch a failure. Each
message names the thing that went wrong and, where there is one, the fix.
"""

from __future__ import annotations


class PubsubkitError(Exception):
    """Base class of every error pubsubkit raises on purpose."""


class ConfigError(PubsubkitError):
    """A URL, option or setting is wrong; the message names it and how to fix it."""


class UnknownSchemeError(ConfigError):
    """No installed plugin serves the URL scheme; the message names the distribution to install."""


class ConnectionLost(PubsubkitError):
    """The broker or the store cannot be reached (after the retries the backend allows)."""


class PublishError(PubsubkitError):
    """The broker did not confirm a message; it may not have been stored.

    :cvar retryable: whether publishing again may succeed; the emitter does not retry a subclass that says
        no (e.g. a message the broker returned as unroutable).
    """

    retryable: bool = True


class DecodeError(PubsubkitError):
    """Bytes could not be turned into an envelope or an event (a poison message)."""


class NotFound(PubsubkitError):
    """A document with the given id does not exist."""


class DuplicateError(PubsubkitError):
    """A document (or processed-message record) with the given id already exists."""


class ConditionFailed(PubsubkitError):
    """A conditional update's condition did not hold; nothing was changed."""


class AlreadyProcessed(DuplicateError):
    """The inbox already holds this message id for this consumer group: the effect happened before."""


class FatalError(PubsubkitError):
    """Raised by a handler for a failure that retrying cannot fix: the message is dead-lettered at once."""


class Closed(PubsubkitError):
    """The emitter, listener or store was used after ``close()``."""
