"""The event service's resources: decode, call the catalog, render. Errors are mapped elsewhere.

Reads are public; every write needs an organizer's token, checked before the body is read.
"""

from __future__ import annotations

import falcon

from myevents.events.catalog import Catalog
from myevents.events.inputs import EventIn, EventPatch, LocationIn, LocationPatch
from myevents.events.views import event_json, location_json
from myevents.web.auth import require_organizer
from myevents.web.body import json_body
from myevents.web.decoding import decode
from myevents.web.middleware import event_headers
from myevents.web.problems import Problem

__all__ = ["EventResource", "EventSearchResource", "EventsResource", "LocationResource", "LocationsResource"]


class EventsResource:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        locations = {loc.id: loc for loc in self.catalog.all_locations()}
        resp.media = [event_json(ev, locations.get(ev.location_id)) for ev in self.catalog.all_events()]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_organizer(req)
        data = decode(EventIn, json_body(req))
        ev, loc = self.catalog.create_event(data, event_headers(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/events/{ev.id}"
        resp.media = event_json(ev, loc)


class EventResource:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        ev = self.catalog.event(id)
        resp.media = event_json(ev, self.catalog.locations.find_one(ev.location_id))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        require_organizer(req)
        patch = decode(EventPatch, json_body(req))
        ev = self.catalog.update_event(id, patch, event_headers(req))
        resp.media = event_json(ev, self.catalog.locations.find_one(ev.location_id))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        require_organizer(req)
        ev = self.catalog.cancel_event(id, event_headers(req))
        resp.media = event_json(ev, self.catalog.locations.find_one(ev.location_id))


class EventSearchResource:
    """``/events/{criteria}/{search}``, criteria ``name`` or ``id`` in any case.

    Falcon wants one field name per path level, and ``/events/{id}`` is there first: the criteria arrives as ``id``.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str, search: str) -> None:
        criteria = id.lower()
        if criteria == "id":
            ev = self.catalog.event(search)
        elif criteria == "name":
            ev = self.catalog.event_named(search)
        else:
            raise Problem(404, f"search by 'name' or 'id', not {id!r}", kind="not-found")
        resp.media = event_json(ev, self.catalog.locations.find_one(ev.location_id))


class LocationsResource:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = [location_json(loc) for loc in self.catalog.all_locations()]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_organizer(req)
        loc = self.catalog.create_location(decode(LocationIn, json_body(req)), event_headers(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/locations/{loc.id}"
        resp.media = location_json(loc)


class LocationResource:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        resp.media = location_json(self.catalog.location(id))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        require_organizer(req)
        patch = decode(LocationPatch, json_body(req))
        resp.media = location_json(self.catalog.update_location(id, patch, event_headers(req)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        require_organizer(req)
        resp.media = location_json(self.catalog.cancel_location(id, event_headers(req)))
