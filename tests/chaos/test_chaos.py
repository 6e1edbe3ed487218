"""The attack machine (tests/chaos/model.py) as tests: a short, fixed profile that
`make test` runs, and the random profile `make chaos` runs (tests/chaos/run.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from .model import Context, machine


@pytest.fixture
def chaos(built_layer: Path, moto_endpoint: str, fault_proxy: Any, aws_resources: Any,
          tmp_path: Path) -> Iterator[Context]:
    ctx = Context(built_layer, moto_endpoint, fault_proxy, aws_resources, tmp_path,
                  exec_wrapper=os.environ.get("CHAOS_EXEC_WRAPPER") == "1")
    try:
        yield ctx
    finally:
        report = os.environ.get("CHAOS_REPORT")
        if report:
            Path(report).write_text(json.dumps(ctx.log, indent=1))


def _settings(examples: int, steps: int, derandomize: bool, shrink: bool = True) -> settings:
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
                    derandomize=derandomize, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else []),
                    report_multiple_bugs=False,
                    print_blob=True)


def test_short_profile_holds_the_invariant(chaos: Context) -> None:
    """Fixed examples (derandomized): the same sequences on every run, about a minute."""
    run_state_machine_as_test(machine(chaos), settings=_settings(examples=6, steps=6, derandomize=True, shrink=False))
    assert len(chaos.log) >= 6 and sum(run.get("items", 0) for run in chaos.log) > 0


@pytest.mark.skipif(not os.environ.get("CHAOS_EXAMPLES"), reason="the random profile: `make chaos`")
def test_random_profile_holds_the_invariant(chaos: Context) -> None:
    """One seed's run (pytest --hypothesis-seed=N replays it)."""
    run_state_machine_as_test(machine(chaos), settings=_settings(
        examples=int(os.environ["CHAOS_EXAMPLES"]), steps=int(os.environ.get("CHAOS_STEPS", "10")),
        derandomize=False))
