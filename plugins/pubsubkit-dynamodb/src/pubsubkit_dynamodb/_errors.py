"""Translating botocore's exceptions into pubsubkit's at the edge."""

from __future__ import annotations

from typing import Any

from pubsubkit.errors import ConfigError, ConnectionLost, PubsubkitError

RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
_CONFIG = frozenset(
    {
        "UnrecognizedClientException",
        "AccessDeniedException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "ValidationException",
        "SerializationException",
    }
)


class TransactionTooLarge(ConfigError):
    """A unit of work holds more writes than one DynamoDB transaction takes (100); nothing was sent."""


class UnsupportedUnitOfWork(ConfigError):
    """A unit of work writes one document twice, which one DynamoDB transaction cannot do; nothing was sent."""


def code_of(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def translate(exc: Exception, what: str) -> PubsubkitError:
    """The pubsubkit error for a botocore failure of ``what`` (raise it ``from exc``)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError
    from botocore.parsers import ResponseParserError

    if isinstance(exc, PubsubkitError):
        return exc
    if isinstance(exc, NoCredentialsError | NoRegionError):
        return ConfigError(f"{what}: {exc} (configure AWS credentials and region the usual boto3 way)")
    if isinstance(exc, ClientError):
        code = code_of(exc)
        message = exc.response.get("Error", {}).get("Message", str(exc))
        if code == "ResourceNotFoundException":
            return ConnectionLost(f"{what}: a table is missing ({message}); it is created again on next use")
        if code in _CONFIG:
            return ConfigError(f"{what}: {code}: {message}")
        if code in RETRYABLE:
            return ConnectionLost(f"{what}: {code}: {message}")
        return PubsubkitError(f"{what}: {code}: {message}")
    if isinstance(exc, BotoCoreError | ResponseParserError):  # unreachable, or an answer that is not one
        return ConnectionLost(f"{what}: {type(exc).__name__}: {exc}")
    return PubsubkitError(f"{what}: {exc}")


def is_client_error(exc: BaseException, *codes: str) -> bool:
    return code_of(exc) in codes


def reasons(exc: BaseException) -> list[dict[str, Any]]:
    """The per-item cancellation reasons of a TransactionCanceledException."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return []
    found = response.get("CancellationReasons")
    return list(found) if isinstance(found, list) else []
