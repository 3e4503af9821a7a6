"""myevents: the reference application of pubsubkit.

An event service (events and locations) and a booking service (bookings) that collaborate only through events:
``myevents.events`` and ``myevents.booking`` each have a ``create_app(config, deps)`` factory; ``myevents.cli``
runs them under gunicorn.
"""
