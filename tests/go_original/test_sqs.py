"""myevents beside the original Go services on SQS (``tox -e sqs``).

The original cannot select SQS by its configuration, but its SQS code reads a queue by name: a message body is
the payload, the attribute ``event_name`` its name. A queue subscribed to the Python services' topic with raw
message delivery gets exactly that; checked here with a plain boto3 client.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest
from backend_urls import AWS, broker_url
from go_style import is_object_id_hex, map_event
from services import create_event, start

import pubsubkit
from pubsubkit.testing import wait_until

pytestmark = pytest.mark.go_original


def test_a_queue_of_the_original_gets_an_event_with_an_object_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    prefix = f"go-{pubsubkit.new_id()[-10:]}"
    url = broker_url("sqs", prefix, tmp_path)
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    sns = boto3.client("sns", endpoint_url=endpoint)
    queue_url = sqs.create_queue(QueueName=f"{prefix}-original")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=prefix)["TopicArn"]  # the topic the Python services publish to: <prefix>
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    svc = start("events", url)
    received: list[dict[str, object]] = []
    try:
        event = create_event(svc)

        def heard() -> bool:
            got = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"], WaitTimeSeconds=1)
            for m in got.get("Messages", []):
                received.append(m)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            return any(m["MessageAttributes"]["event_name"]["StringValue"] == "eventCreated" for m in received)

        wait_until(heard, timeout=60, what="eventCreated in the original's queue")
    finally:
        svc.close()
        sqs.delete_queue(QueueUrl=queue_url)
    [created] = [m for m in received if m["MessageAttributes"]["event_name"]["StringValue"] == "eventCreated"]
    mapped = map_event("eventCreated", created["Body"].encode())
    assert mapped["id"] == event["ID"]
    assert is_object_id_hex(mapped["id"])
    assert json.loads(created["Body"])["location_id"] == event["Location"]["ID"]
