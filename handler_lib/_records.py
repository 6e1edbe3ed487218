"""``NamedTuple`` as the type checker reads it, made at run time without typing's checks.

``typing.NamedTuple`` checks each field's annotation when the class is made; under
``from __future__ import annotations`` each is a string, which it compiles (a ForwardRef):
~250 µs for a class of 12 fields, ~2 ms for the wire module's frame classes, paid by every
cold start of a wrapped handler and by the extension before it registers (issue 22). This
makes the same ``collections.namedtuple`` (fields in order, defaults, the methods, docstring
and annotations of the class body) in ~70 µs; mypy reads ``typing.NamedTuple`` itself.
A leaf: the standard library's ``collections`` only.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads the name as True
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    # what typing.NamedTuple leaves out of the class it makes, or refuses in its body
    _NOT_COPIED = frozenset({"__module__", "__name__", "__annotations__"})
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                             "_make", "_replace", "_asdict", "_source"})

    class _NamedTupleMaker(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            annotations = dict(namespace.get("__annotations__", {}))
            fields = tuple(annotations)
            with_default = [f for f in fields if f in namespace]
            if fields[len(fields) - len(with_default):] != tuple(with_default):
                raise TypeError(f"{name}: a field without a default cannot follow one with a default")
            cls = collections.namedtuple(name, fields, defaults=[namespace[f] for f in with_default],
                                         module=namespace.get("__module__"))
            cls.__annotations__ = annotations
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"cannot overwrite NamedTuple attribute {key}")
                if key not in _NOT_COPIED and key not in fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_NamedTupleMaker):
        """Subclass it as ``typing.NamedTuple``: the class made is a ``collections.namedtuple``."""
