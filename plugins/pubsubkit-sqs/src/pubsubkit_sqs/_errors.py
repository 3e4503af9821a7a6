"""boto3's errors as pubsubkit's: shared by the transport, the consumer and the AWS side."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
from botocore.parsers import ResponseParserError

from pubsubkit.errors import ConfigError, ConnectionLost, PubsubkitError

__all__ = ["DRIVER_ERRORS", "error_code", "is_missing", "refused", "translate"]

_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NotFound", "NotFoundException"}


def is_missing(exc: BaseException) -> bool:
    """The error says that the topic or queue does not exist (deleted, or an emulator restarted)."""
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _MISSING


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


_TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "KMSThrottlingException",
}


def refused(exc: BaseException) -> bool:
    """A client error the service will answer the same way again (a bad request, not an outage)."""
    if not isinstance(exc, ClientError):
        return False
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
    return status < 500 and error_code(exc) not in _TRANSIENT and not is_missing(exc)


def translate(exc: Exception, what: str) -> PubsubkitError:
    """The pubsubkit error for a driver failure: ConfigError for missing setup, else ConnectionLost."""
    if isinstance(exc, NoCredentialsError | NoRegionError):
        return ConfigError(f"sqs: {what}: {exc}")
    if isinstance(exc, ClientError):
        return ConnectionLost(f"sqs: {what}: {error_code(exc)}: {exc}")
    return ConnectionLost(f"sqs: {what}: {type(exc).__name__}: {exc}")


#: What boto3 raises when the service cannot be reached or answers something that is not an answer (a 503 page
#: of a proxy, a server stopping mid-answer: botocore's ResponseParserError is not a BotoCoreError).
DRIVER_ERRORS = (BotoCoreError, ClientError, ResponseParserError)
