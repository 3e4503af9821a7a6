"""Write deploy/grafana/myevents.json: a Grafana dashboard with one panel per metric of pubsubkit and myevents.

Run it after adding a metric: ``python deploy/grafana/make_dashboard.py``. A test fails while the dashboard
misses a metric of ``pubsubkit.metrics.METRIC_NAMES`` or of the myevents services.
"""

from __future__ import annotations

import json
from pathlib import Path

#: (title, PromQL, unit) per panel; ``$service`` is the dashboard's job variable.
PANELS: list[tuple[str, str, str]] = [
    (
        "HTTP requests/s by route",
        'sum by (route, status) (rate(myevents_http_requests_total{job=~"$service"}[1m]))',
        "reqps",
    ),
    (
        "HTTP p99 latency by route",
        "histogram_quantile(0.99, sum by (le, route) "
        '(rate(myevents_http_request_seconds_bucket{job=~"$service"}[5m])))',
        "s",
    ),
    ("Seats booked/s", 'sum(rate(myevents_bookings_count_total{job=~"$service"}[1m]))', "short"),
    (
        "Seats per booking (p50)",
        'histogram_quantile(0.5, sum by (le) (rate(myevents_seats_per_booking_bucket{job=~"$service"}[5m])))',
        "short",
    ),
    (
        "Bookings refused/s by reason",
        'sum by (reason) (rate(myevents_bookings_refused_total{job=~"$service"}[1m]))',
        "short",
    ),
    (
        "Bookings cancelled/s by reason",
        'sum by (reason) (rate(myevents_bookings_cancelled_total{job=~"$service"}[1m]))',
        "short",
    ),
    ("Events emitted/s by name", 'sum by (name) (rate(pubsubkit_emitted_total{job=~"$service"}[1m]))', "short"),
    (
        "Emit p99 (publish + confirm)",
        'histogram_quantile(0.99, sum by (le) (rate(pubsubkit_emit_seconds_bucket{job=~"$service"}[5m])))',
        "s",
    ),
    ("Received/s by group", 'sum by (group) (rate(pubsubkit_received_total{job=~"$service"}[1m]))', "short"),
    ("Handled/s by outcome", 'sum by (group, outcome) (rate(pubsubkit_handled_total{job=~"$service"}[1m]))', "short"),
    (
        "Handler p99 by group",
        'histogram_quantile(0.99, sum by (le, group) (rate(pubsubkit_handler_seconds_bucket{job=~"$service"}[5m])))',
        "s",
    ),
    ("Retries/s by group", 'sum by (group) (rate(pubsubkit_retries_total{job=~"$service"}[1m]))', "short"),
    (
        "Dead letters/s by reason",
        'sum by (group, reason) (rate(pubsubkit_dead_lettered_total{job=~"$service"}[1m]))',
        "short",
    ),
    ("In flight by group", 'sum by (group) (pubsubkit_in_flight{job=~"$service"})', "short"),
    ("Outbox relayed/s", 'sum(rate(pubsubkit_outbox_relayed_total{job=~"$service"}[1m]))', "short"),
    ("Outbox pending", 'max(pubsubkit_outbox_pending{job=~"$service"})', "short"),
    ("Consumer lag by group", 'max by (group) (pubsubkit_consumer_lag{job=~"$service"})', "short"),
]


def dashboard() -> dict[str, object]:
    panels = []
    for i, (title, expr, unit) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"expr": expr, "refId": "A", "legendFormat": "__auto"}],
            }
        )
    return {
        "title": "myevents",
        "uid": "myevents",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "10s",
        "tags": ["myevents", "pubsubkit"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "service",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(myevents_http_requests_total, job)",
                    "includeAll": True,
                    "multi": True,
                },
            ]
        },
        "panels": panels,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("myevents.json")
    out.write_text(json.dumps(dashboard(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
