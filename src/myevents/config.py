"""Configuration of a service: defaults, the original ``config.json`` keys, environment variables, flags.

Later sources win: defaults, then the config file (``--config`` or ``MYEVENTS_CONFIG``), then the original
environment variables (``LISTEN_URL``, ``MONGO_URL``, ``AMQP_BROKER_URL``, ``KAFKA_BROKER_URLS``), then the
simple ones (``MYEVENTS_BROKER_URL``, ``MYEVENTS_STORE_URL``, ``MYEVENTS_DATA_DIR``...), then command-line flags.
Everything ends as two pubsubkit URLs, a broker and a store. With nothing configured both services run on
embedded SQLite under ``./data``: ``bus.db`` (the broker they share), ``events.db`` and ``booking.db``.

The token settings come from ``MYEVENTS_JWT_SECRET``, ``MYEVENTS_JWT_ISSUER``, ``MYEVENTS_JWT_AUDIENCE`` and
``MYEVENTS_JWT_MAX_LIFETIME``, then the ``jwt_*`` keys; without a secret the services use the one kept in the data
directory (:mod:`myevents.tokens`).

A mistake raises :class:`pubsubkit.ConfigError` with one line naming the key and the fix.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

from pubsubkit.errors import ConfigError

__all__ = [
    "DEFAULT_BINDS",
    "DEFAULT_MAX_BODY",
    "FILE_KEYS",
    "MIN_SECRET_BYTES",
    "Config",
    "Service",
    "check_secret",
    "load",
]

Service = Literal["events", "booking"]

#: Bytes a request body may have unless configured (``max_body_bytes``).
DEFAULT_MAX_BODY: Final = 64 * 1024

DEFAULT_BINDS: Final[Mapping[str, str]] = {"events": "localhost:8181", "booking": "localhost:8282"}

#: The keys a config file may hold: the original ones, then the additions.
FILE_KEYS: Final = (
    "databasetype",
    "dbconnection",
    "restfulapi_endpoint",
    "restfulapi-tlsendpoint",
    "message_broker_type",
    "amqp_message_broker",
    "kafka_message_brokers",
    "sqs_message_broker",
    "certfile",
    "keyfile",
    "jwt_secret",
    "jwt_issuer",
    "jwt_audience",
    "jwt_max_lifetime",
)
BROKER_TYPES: Final = ("amqp", "kafka", "sqs", "sqlite")
DATABASE_TYPES: Final = ("mongodb", "dynamodb", "sqlite")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
#: Where the booking projector may run (``MYEVENTS_PROJECTOR``).
PROJECTOR_PLACES: Final = ("in-process", "apart")
DEFAULT_ISSUER: Final = "myevents"
#: The longest a token may still be valid for, in seconds (30 days): a token whose expiry lies further ahead is
#: refused, however it was signed.
DEFAULT_MAX_TOKEN_LIFETIME: Final = 30 * 86400
#: HS256 keys shorter than its digest are refused (RFC 7518, section 3.2).
MIN_SECRET_BYTES: Final = 32

# The original's defaults, used when a file picks a backend type without saying where it is.
ORIGINAL_AMQP: Final = "amqp://guest:guest@localhost:5672"
ORIGINAL_KAFKA: Final = ("localhost:9092",)
ORIGINAL_MONGO: Final = "mongodb://127.0.0.1"
MONGO_DATABASE: Final = "myevents"

_BIND = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\s/]*):(?P<port>\d{1,5})")


@attrs.frozen
class Config:
    """Everything one service process needs to know.

    :ivar bind: ``host:port`` gunicorn listens on (with TLS when ``certfile`` and ``keyfile`` are set).
    :ivar max_body_bytes: larger request bodies are refused with 413.
    """

    service: Service
    broker_url: str
    store_url: str
    bind: str
    data_dir: str
    certfile: str | None = None
    keyfile: str | None = None
    workers: int = 1
    threads: int = 8
    max_body_bytes: int = DEFAULT_MAX_BODY
    log_level: str = "info"
    #: The token secret; ``None``: the one kept in the data directory (see :mod:`myevents.tokens`).
    jwt_secret: str | None = attrs.field(default=None, repr=False)
    jwt_issuer: str = DEFAULT_ISSUER
    jwt_audience: str | None = None
    jwt_max_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME
    #: Seconds a worker keeps serving after SIGTERM with ``/ready`` answering 503, so that a load balancer
    #: takes it out of rotation before it stops accepting connections (``MYEVENTS_SHUTDOWN_DELAY``).
    shutdown_delay: float = 0.0
    #: Where the booking projector runs: ``in-process`` (a listener in the booking service) or ``apart`` (its own
    #: process, ``pubsubkit run myevents.booking.worker:projector``; the service then only serves requests).
    projector: str = "in-process"
    #: ``/ready`` of the booking service answers 503 while more events than this wait for its consumer group
    #: (``MYEVENTS_READY_MAX_LAG``; ``None``: the lag never makes it unready).
    ready_max_lag: int | None = None
    #: Where the web front end's pages send booking requests (the event service hands it to them).
    booking_url: str = "http://localhost:8282"
    #: The origins the booking service answers CORS requests from: those serving the web front end.
    ui_origins: tuple[str, ...] = ("http://localhost:8181", "http://127.0.0.1:8181")

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def base_url(self) -> str:
        host, _, port = self.bind.rpartition(":")
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{'https' if self.tls else 'http'}://{host}:{port}"


def read_file(path: str) -> dict[str, Any]:
    """The keys of a config.json, checked for names and types."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist: fix the path given to --config / MYEVENTS_CONFIG"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config file {path} is not readable JSON ({exc}): fix the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of keys: fix the file")
    for key, value in data.items():
        if key not in FILE_KEYS:
            raise ConfigError(f"config file {path}: unknown key {key!r}; known keys: {', '.join(FILE_KEYS)}")
        if key == "kafka_message_brokers":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(
                    f"config key kafka_message_brokers must be a list of host:port strings, got {value!r}"
                )
        elif not isinstance(value, str):
            raise ConfigError(f"config key {key} must be a string, got {value!r}")
    return data


def _bind(value: str, source: str) -> str:
    """``host:port`` from Go-style ``:8181``, ``0.0.0.0:8181`` or ``http://host:8181``."""
    v = value.strip()
    for prefix in ("http://", "https://"):
        if v.startswith(prefix):
            v = v[len(prefix) :].rstrip("/")
    m = _BIND.fullmatch(v)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise ConfigError(f"{source}: {value!r} is not host:port (e.g. localhost:8181 or :8181)")
    return f"{m['host'] or '0.0.0.0'}:{int(m['port'])}"


def _url(value: str, source: str) -> str:
    if "://" not in value:
        raise ConfigError(f"{source}: {value!r} is not a URL; expected scheme://..., e.g. sqlite:///data/bus.db")
    return value


def _sqlite(data_dir: str, name: str) -> str:
    return f"sqlite:///{os.path.join(data_dir, name)}"


def _broker_url(file: Mapping[str, Any], env: Mapping[str, str], data_dir: str) -> str:
    if env.get("MYEVENTS_BROKER_URL"):
        return _url(env["MYEVENTS_BROKER_URL"], "MYEVENTS_BROKER_URL")
    kind = file.get("message_broker_type")
    if kind is not None and kind not in BROKER_TYPES:
        raise ConfigError(f"config key message_broker_type: {kind!r} is not one of {', '.join(BROKER_TYPES)}")
    amqp = file.get("amqp_message_broker")
    kafka: list[str] | None = file.get("kafka_message_brokers")
    if env.get("AMQP_BROKER_URL") and env.get("KAFKA_BROKER_URLS"):
        raise ConfigError("AMQP_BROKER_URL and KAFKA_BROKER_URLS are both set: unset one, or set MYEVENTS_BROKER_URL")
    if env.get("AMQP_BROKER_URL"):
        kind, amqp = "amqp", env["AMQP_BROKER_URL"]
    elif env.get("KAFKA_BROKER_URLS"):
        kind, kafka = "kafka", [h.strip() for h in env["KAFKA_BROKER_URLS"].split(",") if h.strip()]
    if kind is None:  # the file names a broker without its type: the type is the one it names
        kind = "amqp" if amqp else "kafka" if kafka else "sqs" if file.get("sqs_message_broker") else "sqlite"
    if kind == "amqp":
        return _url(amqp or ORIGINAL_AMQP, "amqp_message_broker / AMQP_BROKER_URL")
    if kind == "kafka":
        hosts = [h.removeprefix("kafka://") for h in (kafka or ORIGINAL_KAFKA)]
        return "kafka://" + ",".join(hosts)
    if kind == "sqs":
        sqs = file.get("sqs_message_broker")
        if not sqs:
            raise ConfigError("message_broker_type sqs needs sqs_message_broker (an sqs:// URL) or MYEVENTS_BROKER_URL")
        return _url(sqs, "sqs_message_broker")
    return _sqlite(data_dir, "bus.db")


def _store_url(service: Service, file: Mapping[str, Any], env: Mapping[str, str], data_dir: str) -> str:
    if env.get("MYEVENTS_STORE_URL"):
        return _url(env["MYEVENTS_STORE_URL"], "MYEVENTS_STORE_URL")
    kind = file.get("databasetype")
    if kind is not None and kind not in DATABASE_TYPES:
        raise ConfigError(f"config key databasetype: {kind!r} is not one of {', '.join(DATABASE_TYPES)}")
    conn = file.get("dbconnection")
    if env.get("MONGO_URL"):
        kind, conn = "mongodb", env["MONGO_URL"]
    if kind is None and conn:
        kind = conn.split("://", 1)[0] if "://" in conn else None
        if kind not in ("mongodb", "mongodb+srv", "dynamodb"):
            raise ConfigError(f"config key dbconnection: {conn!r} is not a mongodb:// or dynamodb:// URL")
    if kind in ("mongodb", "mongodb+srv"):
        url = _url(conn or ORIGINAL_MONGO, "dbconnection / MONGO_URL")
        rest = url.split("://", 1)[1]
        if "/" not in rest or rest.split("/", 1)[1].split("?", 1)[0] == "":
            # The original kept everything in the database "myevents"; both services may share it because
            # their collections have different names.
            head, _, query = url.partition("?")
            url = head.rstrip("/") + "/" + MONGO_DATABASE + (f"?{query}" if query else "")
        return url
    if kind == "dynamodb":
        return conn if conn and conn.startswith("dynamodb://") else "dynamodb://"
    return _sqlite(data_dir, f"{service}.db")


def _tls(
    file: Mapping[str, Any], env: Mapping[str, str], certfile: str | None, keyfile: str | None
) -> tuple[str, str] | None:
    cert = certfile or env.get("MYEVENTS_CERTFILE") or file.get("certfile")
    key = keyfile or env.get("MYEVENTS_KEYFILE") or file.get("keyfile")
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("TLS needs both a certificate and a key: set certfile and keyfile (or --certfile/--keyfile)")
    for name, path in (("certfile", cert), ("keyfile", key)):
        if not os.path.isfile(path):
            raise ConfigError(f"{name} {path} does not exist: fix the path")
    return cert, key


def load(
    service: Service,
    *,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    bind: str | None = None,
    data_dir: str | None = None,
    workers: int | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    booking_url: str | None = None,
    ui_origins: str | None = None,
) -> Config:
    """The configuration of ``service`` from the config file, ``env`` (default: the process's) and flags."""
    env = os.environ if env is None else env
    path = config_file or env.get("MYEVENTS_CONFIG")
    file = read_file(path) if path else {}
    data = os.path.abspath(data_dir or env.get("MYEVENTS_DATA_DIR") or "data")
    tls = _tls(file, env, certfile, keyfile)
    address = _address(service, file, env, bind, tls is not None)
    process = _process(env, workers)
    return Config(
        service=service,
        broker_url=_broker_url(file, env, data),
        store_url=_store_url(service, file, env, data),
        bind=address,
        data_dir=data,
        certfile=tls[0] if tls else None,
        keyfile=tls[1] if tls else None,
        **process,
        **_ui(env, booking_url, ui_origins),
        **_tokens(file, env),
    )


def _address(service: Service, file: Mapping[str, Any], env: Mapping[str, str], bind: str | None, tls: bool) -> str:
    """Where the service listens: --bind, else the TLS endpoint of the file (with TLS), LISTEN_URL, the file's
    endpoint, the service's default."""
    if bind is not None:
        return _bind(bind, "--bind")
    if tls and file.get("restfulapi-tlsendpoint"):
        return _bind(file["restfulapi-tlsendpoint"], "config key restfulapi-tlsendpoint")
    if env.get("LISTEN_URL"):
        return _bind(env["LISTEN_URL"], "LISTEN_URL")
    if file.get("restfulapi_endpoint"):
        return _bind(file["restfulapi_endpoint"], "config key restfulapi_endpoint")
    return DEFAULT_BINDS[service]


def _process(env: Mapping[str, str], workers: int | None) -> dict[str, Any]:
    """Workers, log level, shutdown delay, projector and readiness lag, each checked."""
    n = workers if workers is not None else _int(env, "MYEVENTS_WORKERS", 1)
    if n < 1:
        raise ConfigError(f"workers must be at least 1, got {n}")
    try:
        delay = float(env.get("MYEVENTS_SHUTDOWN_DELAY", "0"))
    except ValueError:
        raise ConfigError("MYEVENTS_SHUTDOWN_DELAY must be a number of seconds, e.g. 5") from None
    if not 0 <= delay <= 60:
        raise ConfigError(f"MYEVENTS_SHUTDOWN_DELAY must be between 0 and 60 seconds, got {delay:g}")
    projector = env.get("MYEVENTS_PROJECTOR", "in-process")
    if projector not in PROJECTOR_PLACES:
        raise ConfigError(f"MYEVENTS_PROJECTOR: {projector!r} is not one of {', '.join(PROJECTOR_PLACES)}")
    max_lag = env.get("MYEVENTS_READY_MAX_LAG")
    if max_lag is not None and not (max_lag.isdigit() and int(max_lag) >= 0):
        raise ConfigError(f"MYEVENTS_READY_MAX_LAG must be a number of events, e.g. 1000, not {max_lag!r}")
    level = env.get("MYEVENTS_LOG_LEVEL", "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"MYEVENTS_LOG_LEVEL: {level!r} is not one of {', '.join(LOG_LEVELS)}")
    return {
        "workers": n,
        "log_level": level,
        "shutdown_delay": delay,
        "projector": projector,
        "ready_max_lag": int(max_lag) if max_lag is not None else None,
    }


def _origin(value: str, source: str) -> str:
    v = value.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+", v):
        raise ConfigError(f"{source}: {value!r} is not an origin like http://localhost:8181")
    return v


def _ui(env: Mapping[str, str], booking_url: str | None, ui_origins: str | None) -> dict[str, Any]:
    """The web front end's settings: the booking service's URL, and the origins allowed to call it."""
    out: dict[str, Any] = {}
    url = booking_url or env.get("MYEVENTS_BOOKING_URL")
    if url:
        source = "--booking-url" if booking_url else "MYEVENTS_BOOKING_URL"
        out["booking_url"] = _origin(url, source)
    origins = ui_origins or env.get("MYEVENTS_UI_ORIGINS")
    if origins:
        source = "--ui-origins" if ui_origins else "MYEVENTS_UI_ORIGINS"
        out["ui_origins"] = tuple(_origin(o, source) for o in origins.split(",") if o.strip())
    return out


def check_secret(secret: bytes, source: str) -> bytes:
    """``secret`` if it is long enough; a :class:`ConfigError` naming ``source`` and the fix otherwise.

    The message gives the length, never the secret.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{source} is {len(secret)} bytes; HS256 needs at least {MIN_SECRET_BYTES}: set a longer one, e.g. the "
            "output of: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return secret


def _tokens(file: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The token settings: ``MYEVENTS_JWT_*`` variables, then ``jwt_*`` keys; no secret means the data dir's."""
    out: dict[str, Any] = {}
    for key in ("secret", "issuer", "audience"):
        name = f"MYEVENTS_JWT_{key.upper()}"
        value = env.get(name) or file.get(f"jwt_{key}")
        if value:
            out[f"jwt_{key}"] = value
            source = name if env.get(name) else f"config key jwt_{key}"
            if key == "secret":
                check_secret(value.encode(), source)
            elif value != value.strip():
                raise ConfigError(f"{source}: {value!r} has spaces around it: remove them")
    lifetime = env.get("MYEVENTS_JWT_MAX_LIFETIME") or file.get("jwt_max_lifetime")
    if lifetime is not None and lifetime != "":
        source = "MYEVENTS_JWT_MAX_LIFETIME" if env.get("MYEVENTS_JWT_MAX_LIFETIME") else "config key jwt_max_lifetime"
        try:
            seconds = int(str(lifetime).strip())
        except ValueError:
            seconds = 0
        if seconds < 1:
            raise ConfigError(f"{source}: {lifetime!r} is not a whole number of seconds of at least 1 (e.g. 86400)")
        out["jwt_max_lifetime"] = seconds
    return out


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a whole number") from None
