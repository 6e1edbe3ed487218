"""DEFER_DEADLINE_MARGIN_MS against the function's timeout: refused at start where the timeout
is known, capped per invoke (once logged) where only the invoke's deadline tells it."""

from __future__ import annotations

import logging

import pytest

from handler_lib import config


@pytest.fixture(autouse=True)
def fresh_warning(monkeypatch):
    monkeypatch.setattr(config, "_margin_warned", False)


@pytest.mark.parametrize("margin,timeout", [("3000", "3"), ("5000", "3"), ("2500", "2.5")])
def test_a_margin_not_below_a_known_timeout_is_a_config_error(margin, timeout):
    env = {"DEFER_DEADLINE_MARGIN_MS": margin, "AWS_LAMBDA_FUNCTION_TIMEOUT": timeout}
    with pytest.raises(config.ConfigError, match=rf"DEFER_DEADLINE_MARGIN_MS={margin}: not below .*"
                                                 r"AWS_LAMBDA_FUNCTION_TIMEOUT"):
        config.load(env)


@pytest.mark.parametrize("env", [{"DEFER_DEADLINE_MARGIN_MS": "2999", "AWS_LAMBDA_FUNCTION_TIMEOUT": "3"},
                                 {"DEFER_DEADLINE_MARGIN_MS": "5000"},  # Lambda: the timeout is not said
                                 {"DEFER_DEADLINE_MARGIN_MS": "5000", "AWS_LAMBDA_FUNCTION_TIMEOUT": "soon"}])
def test_otherwise_the_margin_is_taken_as_given(env):
    assert config.load(env).deadline_margin_ms == int(env["DEFER_DEADLINE_MARGIN_MS"])


@pytest.mark.parametrize("margin,window,used", [
    (300, 3000, 300), (5000, 6000, 5000), (1500, 3000, 1500),  # leave at least 1 s: as given
    (5000, 3000, 2000), (2999, 3000, 2000), (60_000, 900_000, 60_000),
    (500, 800, 400), (300, 0, 300), (300, None, 300),  # a short invoke keeps half; no window: as given
])
def test_the_margin_of_an_invoke_leaves_it_time_to_deliver(margin, window, used):
    assert config.delivery_margin_ms(margin, window) == used


def test_capping_is_logged_once_per_process(caplog):
    with caplog.at_level(logging.WARNING, logger="defer_runner.config"):
        for _ in range(3):
            config.delivery_margin_ms(5000, 3000)
    (record,) = caplog.records
    assert "DEFER_DEADLINE_MARGIN_MS=5000" in record.getMessage() and "2000 ms" in record.getMessage()
