"""The claim check at the call: with a bucket, SQS and SNS messages up to what one hand-off
carries are taken (over the threshold they will go by S3); without one, over the service's
limit is a ValueError, as before; a message that would need an 11th attribute for its
pointer, or names the pointer's attribute itself, is refused where it entered."""

import pytest

from handler_lib import config, defer
from handler_lib._dispatch import DISPATCHER
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
NINE = {f"a{i}": "v" for i in range(9)}


@pytest.fixture
def bucket(monkeypatch):
    monkeypatch.setenv("DEFER_LARGE_PAYLOAD_BUCKET", "my-payloads")
    DISPATCHER.reset()
    yield
    monkeypatch.delenv("DEFER_LARGE_PAYLOAD_BUCKET")
    DISPATCHER.reset()


def test_with_a_bucket_an_sns_message_over_256_kb_is_taken(bucket):
    with capture() as deferred:
        defer.sns(TOPIC, "x" * 300_000)
        defer.sqs(QUEUE, "y" * 1_000_000)
    assert [len(m.message) for m in deferred.sns] == [300_000]
    assert [len(m.body) for m in deferred.sqs] == [1_000_000]  # queued as deferred; S3 comes at the send


def test_without_a_bucket_over_the_limit_is_a_value_error_that_names_the_fix():
    with capture() as deferred:
        with pytest.raises(ValueError, match="SNS allows 262144 .*DEFER_LARGE_PAYLOAD_BUCKET"):
            defer.sns(TOPIC, "x" * 300_000)
    assert list(deferred) == []


@pytest.mark.parametrize("call, match", [
    (lambda: defer.sqs(QUEUE, "x" * 1_048_577), "carries up to 1048576"),
    (lambda: defer.sns(TOPIC, "x" * 300_000, attributes=NINE), "would be 11 attributes"),
    (lambda: defer.sqs(QUEUE, "m", attributes={"ExtendedPayloadSize": 5}), "marks a payload kept in S3"),
])
def test_what_the_claim_check_cannot_carry_is_refused_at_the_call(bucket, call, match):
    with capture() as deferred:
        with pytest.raises(ValueError, match=match):
            call()
    assert list(deferred) == []


def test_nine_attributes_are_fine_under_the_threshold(bucket):
    with capture() as deferred:
        defer.sns(TOPIC, "small", attributes=NINE)
    assert len(deferred.sns[0].attributes) == 9


def test_the_threshold_is_at_most_the_services_limit():
    cfg = config.load({"DEFER_LARGE_PAYLOAD_BUCKET": "b-1", "DEFER_LARGE_PAYLOAD_THRESHOLD": "500000"})
    assert (cfg.offload_above(1_048_576), cfg.offload_above(262_144)) == (500_000, 262_144)
    assert config.load({"DEFER_LARGE_PAYLOAD_BUCKET": "b-1"}).offload_above(262_144) == 262_144
    assert config.load({"DEFER_LARGE_PAYLOAD_THRESHOLD": "10"}).offload_above(262_144) is None  # no bucket


@pytest.mark.parametrize("env, match", [
    ({"DEFER_LARGE_PAYLOAD_BUCKET": "My_Bucket"}, "not an S3 bucket name"),
    ({"DEFER_LARGE_PAYLOAD_BUCKET": "ab"}, "not an S3 bucket name"),
    ({"DEFER_LARGE_PAYLOAD_BUCKET": "a..b"}, "not an S3 bucket name"),
    ({"DEFER_LARGE_PAYLOAD_THRESHOLD": "1048577"}, "outside the allowed range 0..1048576"),
    ({"DEFER_LARGE_PAYLOAD_THRESHOLD": "big"}, "not a whole number"),
])
def test_bad_claim_check_settings_name_the_variable(env, match):
    with pytest.raises(config.ConfigError, match=match):
        config.load(env)
