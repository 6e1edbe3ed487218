"""Configuration parsing and the public surface."""

import inspect

import pytest

import handler_lib
from handler_lib import config


def test_defaults_match_the_design_table():
    c = config.load({})
    assert (c.socket_path, c.mode, c.dlq_url, c.max_attempts, c.deadline_margin_ms) == (
        "/tmp/defer-runner.sock", "auto", None, 5, 300)


@pytest.mark.parametrize("env, match", [
    ({"DEFER_MODE": "sometimes"}, "auto, extension, inline"),
    ({"DEFER_MAX_ATTEMPTS": "0"}, "1..100"),
    ({"DEFER_MAX_ATTEMPTS": "three"}, "not a whole number"),
    ({"DEFER_DEADLINE_MARGIN_MS": "-5"}, "0..60000"),
    ({"DEFER_INLINE_BUDGET_MS": "900001"}, "DEFER_INLINE_BUDGET_MS=900001: outside the allowed range 0..900000"),
    ({"DEFER_TRANSPORT": "lean"}, "DEFER_TRANSPORT='lean': expected one of auto, botocore"),
])
def test_bad_values_name_the_variable_and_the_allowed_range(env, match):
    with pytest.raises(config.ConfigError, match=match):
        config.load(env)


@pytest.mark.parametrize("raw, transport", [(None, "auto"), ("", "auto"), ("auto", "auto"),
                                            (" Botocore ", "botocore")])
def test_defer_transport_is_auto_unless_told_botocore(raw, transport):
    assert config.load({} if raw is None else {"DEFER_TRANSPORT": raw}).transport == transport


def test_public_names_are_exactly_all():
    public = {n for n in dir(handler_lib) if not n.startswith("_")}
    modules = {n for n in public if inspect.ismodule(getattr(handler_lib, n))}
    assert public - modules == set(handler_lib.__all__)


def test_design_signatures():
    d = handler_lib.defer
    assert list(inspect.signature(d.sqs).parameters) == [
        "queue_url", "message", "group_id", "dedup_id", "delay_seconds", "attributes"]
    assert list(inspect.signature(d.sns).parameters) == [
        "topic_arn", "message", "subject", "attributes", "group_id", "dedup_id"]
    assert list(inspect.signature(d.event).parameters) == ["detail_type", "detail", "source", "bus", "resources"]
