"""Helpers of the pubsubkit-mongo tests: store URLs with a database of their own, dropped afterwards."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pymongo

from pubsubkit.testing import unique_name


def with_database(uri: str, database: str) -> str:
    """``uri`` with ``database`` as its path, its query kept."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"/{database}"))


class Databases:
    """Hands out fresh database names on the test server and drops them all at the end."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.names: list[str] = []

    def url(self, prefix: str = "pkt") -> str:
        name = unique_name(prefix)
        self.names.append(name)
        return with_database(self.uri, name)

    def raw_client(self) -> pymongo.MongoClient[dict[str, object]]:
        return pymongo.MongoClient(self.uri)

    def drop_all(self) -> None:
        if not self.names:
            return
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(self.uri)
        try:
            for name in self.names:
                client.drop_database(name)
        finally:
            client.close()
