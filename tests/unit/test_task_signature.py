"""``task.defer(...)`` fails like calling the task would, at the call, not five times in the extension."""

import functools
import inspect
import itertools
import subprocess
import sys

import pytest

from handler_lib import defer
from handler_lib._tasks import check_call
from handler_lib.testing import capture
from tests.conftest import REPO_ROOT


@defer.task
def ship(order_id: str, carrier: str = "post", *, express: bool = False) -> str:
    return f"{order_id} {carrier} {express}"


@defer.task(pass_item_id=True)
def charge(order_id: str, defer_id: str) -> str:
    return defer_id


def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


@defer.task
@logged
def wrapped(order_id: str) -> None:
    pass


@pytest.mark.parametrize("call, match", [
    (lambda: ship.defer(), "missing required arguments: 'order_id'"),
    (lambda: ship.defer("o-1", "ups", True), "takes 2 positional arguments but 3 were given"),
    (lambda: ship.defer("o-1", order_id="o-2"), "multiple values for argument 'order_id'"),
    (lambda: ship.defer("o-1", speed=2), "unexpected keyword argument 'speed'"),
    (lambda: defer.call(ship, "o-1", "ups", "x"), "takes 2 positional"),
    (lambda: charge.defer("o-1", defer_id="mine"), "defer_id is passed by the runner"),
    (lambda: charge.defer(), "missing required arguments: 'order_id'"),
    (lambda: wrapped.defer("o-1", "extra"), "too many positional arguments"),
])
def test_arguments_the_task_cannot_take_fail_at_the_call(call, match):
    with capture() as deferred:
        with pytest.raises(TypeError, match=match):
            call()
    assert list(deferred) == []


def test_arguments_the_task_takes_are_queued():
    with capture() as deferred:
        ship.defer("o-1")
        ship.defer("o-1", carrier="ups", express=True)
        charge.defer(order_id="o-2")
        wrapped.defer("o-3")
    assert [t.args for t in deferred.tasks] == [["o-1"], ["o-1"], [], ["o-3"]]


def a(x, /, y, z=1, *, k, m=2): pass
def b(*args, **kwargs): pass
def c(x, y=0, *rest, k=3): pass
def d(x, /, **kw): pass
def e(): pass


@pytest.mark.parametrize("fn", [a, b, c, d, e])
def test_the_code_object_check_agrees_with_inspect_on_every_call_shape(fn):
    values = [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)]
    keywords = [{}, {"x": 0}, {"y": 0}, {"k": 0}, {"z": 0, "k": 0}, {"q": 0}, {"y": 0, "k": 0, "m": 0}]
    for args, kwargs in itertools.product(values, keywords):
        try:
            inspect.signature(fn).bind(*args, **kwargs)
            expected = None
        except TypeError:
            expected = TypeError
        try:
            check_call(fn, args, kwargs)
            got = None
        except TypeError:
            got = TypeError
        assert got is expected, (fn.__name__, args, kwargs)


def test_checking_a_plain_task_does_not_import_inspect():
    code = ("import sys\nfrom handler_lib import defer\nfrom handler_lib.testing import capture\n"
            "from tests.unit.test_task_signature import ship\n"
            "sys.modules.pop('inspect', None)\n"
            "with capture():\n    ship.defer('o-1')\n"
            "print('inspect' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
