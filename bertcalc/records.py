"""Dataclasses that cost less to create and to construct (#11): :func:`frozen` is ``@dataclass(frozen=True)``
and :func:`record` is ``@dataclass(eq=False)``, with the methods the dataclass would write.

Every command creates dozens of these classes at start-up, and ``count`` constructs a few dozen instances per
config. dataclasses compiles each method it writes with its own ``exec``: about 55 us apiece, and 0.2 to 1 ms
per class. Here dataclasses only collects the fields (``init=False, repr=False, eq=False``; a frozen class
still gets its ``__setattr__`` and ``__delattr__`` from it), and the methods are:

- ``__init__``: compiled on first use, with the same signature, defaults and default factories. A frozen
  class's writes the instance ``__dict__``: 0.3 us for five fields, against about 1 us through
  ``object.__setattr__`` in a frozen dataclass. Any other class's assigns its fields, as dataclasses does. A class
  a command never instantiates never compiles one;
- ``__repr__``, ``__eq__``, ``__hash__``: one shared function each, reading the fields the dataclass would
  (``repr``, ``compare``, ``hash`` as dataclasses rules them), with the same results. Equality compares the
  fields as one tuple against the other's, for the same class only; ``__repr__`` has the same guard against
  recursion.

``tests/test_frozen.py`` checks each against the dataclass of the same body.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any


class _Factory:
    """The default a field with a ``default_factory`` shows in ``__init__``'s signature, as dataclasses'."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _getter(names: tuple[str, ...]) -> Any:
    """``obj -> (obj.a, obj.b, ...)``, the tuple dataclasses' generated methods build (in C, by attrgetter)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


class _LazyInit:
    """A class's ``__init__``, compiled the first time it is looked up (the first instance, or
    ``inspect.signature``), which then replaces this stand-in on the class."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        fn = self.cls.__dict__.get("__init__")
        if fn is self:
            fn = _compile_init(self.cls)
            type.__setattr__(self.cls, "__init__", fn)
        return fn if obj is None else fn.__get__(obj, owner)


def _compile_init(cls: type) -> Any:
    # frozen: into the instance __dict__ (a frozen dataclass goes through object.__setattr__, three times slower);
    # otherwise plain assignments, as dataclasses writes them (CPython keeps such attributes inline, without a
    # __dict__, which reads faster later)
    frozen = cls.__dataclass_params__.frozen
    env: dict[str, Any] = {"_FACTORY": _FACTORY}
    params, kw_only, body = [], [], []
    fs = fields(cls)
    for f in fs:
        into = kw_only if f.kw_only else params
        target = f"d[{f.name!r}]" if frozen else f"self.{f.name}"
        if f.default is not MISSING:
            env[f"_d_{f.name}"] = f.default
            into.append(f"{f.name}=_d_{f.name}")
            body.append(f"    {target} = {f.name}")
        elif f.default_factory is not MISSING:
            env[f"_f_{f.name}"] = f.default_factory
            into.append(f"{f.name}=_FACTORY")
            body.append(f"    {target} = _f_{f.name}() if {f.name} is _FACTORY else {f.name}")
        else:
            into.append(f.name)
            body.append(f"    {target} = {f.name}")
    signature = ", ".join(["self", *params, *(["*", *kw_only] if kw_only else [])])
    head = "    d = self.__dict__\n" if frozen else ""
    exec(f"def __init__({signature}):\n{head}" + "\n".join(body or ["    pass"]), env)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {**{f.name: f.type for f in fs}, "return": None}  # as dataclasses' has
    return init


def _fast(cls: type, *, frozen: bool, eq: bool, show: bool) -> type:
    """``cls`` as ``@dataclass(frozen=frozen, eq=eq, repr=show)`` makes it (see the module's docstring)."""
    documented = bool(cls.__dict__.get("__doc__"))
    if not documented:  # dataclasses would document it from object.__init__'s signature, which tokenizes text
        cls.__doc__ = "-"
    if not frozen and cls.__setattr__ is not object.__setattr__:
        raise TypeError(f"{cls.__name__}: records.record writes fields past a custom __setattr__; use @dataclass")
    cls = dataclass(init=False, repr=False, eq=False, frozen=frozen)(cls)
    fs = fields(cls)
    if "__post_init__" in cls.__dict__ or any(not f.init for f in fs):
        raise TypeError(f"{cls.__name__}: records.frozen and records.record have no __post_init__ nor init=False "
                        "fields; use @dataclass")
    made: dict[str, Any] = {"__init__": _LazyInit(cls)}
    if show:
        shown = tuple(f.name for f in fs if f.repr)

        def __repr__(self: Any) -> str:
            return f"{self.__class__.__qualname__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in shown) + ")"

        made["__repr__"] = recursive_repr()(__repr__)
    if eq:
        key = _getter(tuple(f.name for f in fs if f.compare))

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is self.__class__:
                return key(self) == key(other)
            return NotImplemented

        made["__eq__"] = __eq__
        own_hash = cls.__dict__.get("__hash__", MISSING)  # dataclasses' rule: a __hash__ of the class body stays
        if frozen and (own_hash is MISSING or (own_hash is None and "__eq__" in cls.__dict__)):
            hkey = _getter(tuple(f.name for f in fs if (f.compare if f.hash is None else f.hash)))

            def __hash__(self: Any) -> int:
                return hash(hkey(self))

            made["__hash__"] = __hash__
    for name, fn in made.items():
        if name != "__hash__" and name in cls.__dict__:  # a method of the class body stays, as with dataclasses
            continue
        if name != "__init__":
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
        setattr(cls, name, fn)
    told = cls.__dataclass_params__  # what the class is, as dataclasses.dataclass would record it
    truth = object.__new__(type(told))
    for slot in type(told).__slots__:
        object.__setattr__(truth, slot, getattr(told, slot))
    truth.init, truth.repr, truth.eq = True, show, eq
    cls.__dataclass_params__ = truth
    if not documented:  # what dataclasses writes: the class's signature
        import inspect

        cls.__doc__ = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
    return cls


def frozen(cls: type) -> type:
    """``@dataclass(frozen=True)``, cheaper to create and to construct (see the module's docstring)."""
    return _fast(cls, frozen=True, eq=True, show=True)


def record(cls: type | None = None, *, show: bool = True) -> Any:
    """``@dataclass(eq=False)`` (``record(show=False)``: also ``repr=False``), cheaper to create: the program's
    ops and values, compared by identity, of which every command that reads a program creates some thirty
    classes at start-up."""
    def wrap(c: type) -> type:
        return _fast(c, frozen=False, eq=False, show=show)

    return wrap if cls is None else wrap(cls)
