"""``records.frozen`` is ``@dataclass(frozen=True)`` and ``records.record`` is ``@dataclass(eq=False)``, both cheaper
to create and to construct (#11): everything a caller can see must be what the dataclass gives, checked here
against the dataclass itself."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from bertcalc.records import _LazyInit, frozen, record


def _body():
    class Sample:
        name: str
        dims: tuple
        size: int = 3
        values: dict = dataclasses.field(default_factory=dict, hash=False)
        hidden: str = dataclasses.field(default="h", repr=False, compare=False)
        flag: bool = dataclasses.field(default=False, kw_only=True)

    return Sample


def _pair():
    return frozen(_body()), dataclasses.dataclass(frozen=True)(_body())


def test_frozen_is_a_frozen_dataclass_to_every_caller() -> None:
    ours, theirs = _pair()
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    assert ours.__doc__ == theirs.__doc__  # dataclasses documents an undocumented class by its signature
    assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(theirs)]
    for args, kw in [(("a", (1,)), {}), (("a", (1,), 4), {"values": {"x": 1}, "hidden": "z", "flag": True})]:
        a, b = ours(*args, **kw), theirs(*args, **kw)
        assert repr(a) == repr(b)
        assert a == ours(*args, **kw) and hash(a) == hash(ours(*args, **kw))
        assert hash(a) == hash(b)  # the same fields, hashed as the same tuple
        assert a.__eq__(b) is NotImplemented and b.__eq__(a) is NotImplemented  # another class: not ours to say
        assert vars(a) == vars(b)
        assert dataclasses.replace(a, size=9).size == 9 and dataclasses.replace(a, size=9) != a
        assert dataclasses.asdict(a) == dataclasses.asdict(b)
        with pytest.raises(dataclasses.FrozenInstanceError):
            a.name = "b"
    assert ours("a", ()).values is not ours("a", ()).values  # a fresh dict per instance, as default_factory gives
    assert ours("a", (), hidden="x") == ours("a", (), hidden="y")  # compare=False is honoured
    with pytest.raises(TypeError):
        ours("a", (), 1, {}, "h", True)  # flag is keyword-only
    with pytest.raises(TypeError):
        ours("a")  # dims is required
    told, want = ours.__dataclass_params__, theirs.__dataclass_params__
    assert [getattr(told, s) for s in type(want).__slots__] == [getattr(want, s) for s in type(want).__slots__]
    assert ours.__match_args__ == theirs.__match_args__


@pytest.mark.parametrize("show", [True, False])
def test_record_is_a_dataclass_without_eq(show: bool) -> None:
    ours = record(show=show)(_body()) if not show else record(_body())
    theirs = dataclasses.dataclass(eq=False, repr=show)(_body())
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    assert ours.__doc__ == theirs.__doc__
    a, b = ours("a", (1,), 4, flag=True), theirs("a", (1,), 4, flag=True)
    assert vars(a) == vars(b)
    assert (repr(a) == repr(b)) if show else repr(a).startswith("<")  # repr=False: object's own
    assert a != ours("a", (1,), 4, flag=True) and a == a  # compared by identity, as eq=False leaves it
    assert hash(a) == object.__hash__(a)
    a.size = 5  # not frozen
    assert a.size == 5 and dataclasses.replace(a, size=6).size == 6
    told, want = ours.__dataclass_params__, theirs.__dataclass_params__
    assert [getattr(told, s) for s in type(want).__slots__] == [getattr(want, s) for s in type(want).__slots__]


def test_init_is_compiled_on_first_use_and_methods_of_the_body_stay() -> None:
    class Lazy:
        """Documented, so nothing reads the signature at creation."""

        x: int
        y: int = 2

        def __repr__(self) -> str:
            return "mine"

    cls = frozen(Lazy)
    assert isinstance(cls.__dict__["__init__"], _LazyInit)  # not compiled yet
    one = cls(1)
    assert not isinstance(cls.__dict__["__init__"], _LazyInit) and cls.__init__.__qualname__.endswith("Lazy.__init__")
    assert (one.x, one.y, repr(one)) == (1, 2, "mine")  # the body's __repr__ stays, as dataclasses leaves it

    @frozen
    class Child(cls):
        z: int = 3

    c = Child(1, 2, 4)
    assert (c.x, c.z) == (1, 4) and c == Child(1, 2, 4) and c != Child(1, 2, 5) and hash(c) == hash(Child(1, 2, 4))
    assert [f.name for f in dataclasses.fields(Child)] == ["x", "y", "z"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.z = 1


def test_frozen_instances_pickle_and_compare_by_value() -> None:
    from bertcalc.model import Dim, TensorSpec

    t = TensorSpec("encoder.layer.{i}.output.dense.weight", (Dim(768, "hidden_size"), Dim(3072)), "weight")
    assert pickle.loads(pickle.dumps(t)) == t
    assert t == TensorSpec("encoder.layer.{i}.output.dense.weight", (Dim(768, "hidden_size"), Dim(3072)), "weight")
    assert t.parameters == 768 * 3072 and pickle.loads(pickle.dumps(t)).shape == (768, 3072)


def test_frozen_refuses_what_it_does_not_write() -> None:
    class WithPost:
        x: int

        def __post_init__(self) -> None:  # pragma: no cover - never called
            pass

    with pytest.raises(TypeError, match="__post_init__"):
        frozen(WithPost)


def test_every_frozen_class_in_bertcalc_matches_the_dataclass_signature() -> None:
    """The real classes: their __init__ takes what @dataclass(frozen=True) of the same body would take."""
    from bertcalc import (
        activations,
        adapters,
        checkpoint,
        comparing,
        counting,
        distributed,
        flopcount,
        formula,
        inspection,
        listing,
        loading,
        memsim,
        model,
        overview,
        program,
        reserved,
        sweeping,
        verification,
    )

    checked = 0
    for mod in (model, counting, loading, flopcount, memsim, activations, listing, program, formula, adapters,
                checkpoint, comparing, distributed, inspection, overview, reserved, sweeping, verification):
        for cls in vars(mod).values():
            if not (isinstance(cls, type) and cls.__module__ == mod.__name__ and dataclasses.is_dataclass(cls)):
                continue
            if cls.__init__.__code__.co_filename != "<string>":
                continue
            want = [(f.name, f.default, f.kw_only) for f in dataclasses.fields(cls)]
            got = [(p.name, p.default, p.kind == p.KEYWORD_ONLY) for p in inspect.signature(cls).parameters.values()]
            assert [(n, k) for n, _, k in got] == [(n, k) for n, _, k in want], cls
            for (_, d_got, _), f in zip(got, dataclasses.fields(cls), strict=True):
                if f.default is not dataclasses.MISSING:
                    assert d_got is f.default, (cls, f.name)
                elif f.default_factory is not dataclasses.MISSING:
                    assert repr(d_got) == "<factory>", (cls, f.name)
                else:
                    assert d_got is inspect.Parameter.empty, (cls, f.name)
            checked += 1
    assert checked >= 70


def test_config_classes_have_real_annotations() -> None:
    """config.py and the family files leave out ``from __future__ import annotations``: pydantic reads a config
    class's annotations, and from strings it compiles and evaluates each one (again for the base's fields in
    every subclass) at the start-up of every command (#11)."""
    from pathlib import Path

    import bertcalc

    root = Path(bertcalc.__file__).parent
    files = [root / "config.py", *sorted((root / "families").glob("*.py"))]
    assert len(files) > 10
    for path in files:
        assert "from __future__ import annotations" not in path.read_text(encoding="utf-8"), path.name
    from bertcalc.config import config_class
    from bertcalc.families import names

    for family in names():
        assert not any(isinstance(a, str) for a in config_class(family).__annotations__.values()), family
