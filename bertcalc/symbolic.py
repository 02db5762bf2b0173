"""A family's build, traced once per structure with its sizes as symbols: ``count`` without building (#11).

``count`` needs two integers from an :class:`~bertcalc.model.Architecture` (its unique and its state-dict
parameters) and a few strings (the model class, the fields it ignores, the family's notes). Building the
architecture to get them costs most of a call, and two configs that differ only in their sizes build the same
tensors with other numbers in them. So the family's own ``build`` is run once on a config whose integer fields
are :class:`Sym` values, each carrying the expression it came from: ``Part`` and ``Architecture`` multiply and
add them as they would ints, and what comes out is the totals as expressions in the config's integer fields.
Nothing is written twice: the expressions are the tensor list's own arithmetic, recorded.

Where the build *branches* on a size (``if cfg.embedding_size != cfg.hidden_size``, ``range(inner_group_num)``,
a size written into a note), the comparison is recorded as a guard, and the template answers only configs for
which every guard comes out the same; anything a ``Sym`` cannot follow (an int conversion, a hash, a format)
pins that value, which is a guard too. An operation it does not define raises ``TypeError``, and the structure
is then never traced: every config of it is built, as before. The guards and totals are compiled into one
Python function of the integer fields, so a template's answer costs a few microseconds.

A template is checked against the real build of the config it was traced from before it is kept, and
``tests/test_symbolic.py`` checks templates against real builds of other configs, for every family and head.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

# An expression is a tuple: ("f", i) is the config's i-th integer field, ("c", k) the constant k, and
# (op, a, b) or ("neg", a) an operation on expressions. Tuples are compared by identity when compiled
# (one local per node), so a subexpression the build shares is computed once.

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod,
}  # no ** (a negative power is a float) and no /: a build that uses them is not traced
_CMPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class Sym:
    """An integer config value during a trace: its value in the traced config (``v``), the expression it is
    (``n``), and the guards of the trace it belongs to (``g``). Not an ``int`` subclass, on purpose: C code
    reads an int subclass's value without asking it (``range``, ``list * n``), which would bake a size into
    the template unseen; a ``Sym`` is asked, through ``__index__``, and pins itself."""

    __slots__ = ("g", "n", "v")

    def __init__(self, v: int, n: tuple, g: list) -> None:
        self.v, self.n, self.g = v, n, g

    def _pin(self) -> int:
        """The template holds only for this exact value from here on."""
        self.g.append(("==", self.n, ("c", self.v), True))
        return self.v

    # what would read the value without going through arithmetic: pinned
    def __index__(self) -> int:
        return self._pin()

    __int__ = __index__

    def __float__(self) -> float:
        return float(self._pin())

    def __hash__(self) -> int:
        return hash(self._pin())

    def __format__(self, spec: str) -> str:
        return format(self._pin(), spec)

    def __str__(self) -> str:
        return str(self._pin())

    __repr__ = __str__

    def __bool__(self) -> bool:
        r = self.v != 0
        self.g.append(("!=", self.n, ("c", 0), r))
        return r

    def __neg__(self) -> Sym:
        return Sym(-self.v, ("neg", self.n), self.g)

    def __pos__(self) -> Sym:
        return self

    def __abs__(self) -> int:
        return abs(self._pin())

    def __pow__(self, k: Any) -> Any:
        """``x ** k`` for a whole k >= 0 (``batch ** 2``, ``seq ** 0``), as k - 1 products; anything else pinned."""
        if type(k) is Sym:
            k = k._pin()
        if type(k) is not int or k < 0 or k > 8:
            return self._pin() ** k
        out: Any = 1
        for _ in range(k):
            out = out * self
        return out

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        """``isinstance(x, int)`` holds for a Sym, as it does for the value it stands for, so a check written
        for ints takes the branch it takes for them (``type(x)`` is still Sym)."""
        return int

    def __truediv__(self, other: Any) -> Any:
        return self._pin() / (other._pin() if type(other) is Sym else other)

    def __rtruediv__(self, other: Any) -> Any:
        return other / self._pin()


def _node(x: Any) -> tuple | None:
    t = type(x)
    if t is Sym:
        return x.n
    if t is int or t is bool:
        return ("c", int(x))
    return None


BUDGET = 20_000  # operations a trace may record: a build that does more (ALBERT with 10^3 layers per group
_LEFT = [BUDGET]  # writes 10^5) is not traced, and is built as before


def _spend() -> None:
    _LEFT[0] -= 1
    if _LEFT[0] < 0:
        raise Untraceable(f"more than {BUDGET:,} operations on sizes")


def _arith(op: str) -> tuple[Callable, Callable]:
    fn = _OPS[op]

    def forward(self: Sym, other: Any) -> Any:
        o = _node(other)
        if o is None:
            return NotImplemented
        _spend()
        return Sym(fn(self.v, other.v if type(other) is Sym else other), (op, self.n, o), self.g)

    def reflected(self: Sym, other: Any) -> Any:
        o = _node(other)
        if o is None:
            return NotImplemented
        _spend()
        return Sym(fn(other, self.v), (op, o, self.n), self.g)

    return forward, reflected


def _compare(op: str) -> Callable:
    fn = _CMPS[op]

    def compare(self: Sym, other: Any) -> Any:
        if type(other) is float:  # an int against a float: not an expression of ours, so pinned
            return fn(self._pin(), other)
        o = _node(other)
        if o is None:
            return NotImplemented  # == with text or None: False whatever the value
        r = fn(self.v, other.v if type(other) is Sym else other)
        self.g.append((op, self.n, o, r))
        return r

    return compare


for _op, _name in (("+", "add"), ("-", "sub"), ("*", "mul"), ("//", "floordiv"), ("%", "mod")):
    _f, _r = _arith(_op)
    setattr(Sym, f"__{_name}__", _f)
    setattr(Sym, f"__r{_name}__", _r)
for _op, _name in (("==", "eq"), ("!=", "ne"), ("<", "lt"), ("<=", "le"), (">", "gt"), (">=", "ge")):
    setattr(Sym, f"__{_name}__", _compare(_op))


# ---------------------------------------------------------------------------------------------- tracing

class Untraceable(Exception):
    """The build did something a template cannot follow; that structure is built every time."""


def _postorder(roots: list[tuple], done: dict[int, Any]) -> list[tuple]:
    """Every node under ``roots`` that ``done`` lacks, each once, children first (iteratively: a sum over 10^4
    tensors is a chain 10^4 deep)."""
    seen: set[int] = set()
    order: list[tuple] = []
    stack: list[tuple[tuple, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        n, ready = stack.pop()
        if id(n) in seen or id(n) in done:
            continue
        if ready or n[0] == "f" or n[0] == "c":
            seen.add(id(n))
            order.append(n)
            continue
        stack.append((n, True))
        stack.extend((c, False) for c in reversed(n[1:]) if id(c) not in seen and id(c) not in done)
    return order


_TERMS = 64  # past this many terms a total is computed as traced, not collected


def _compile(guards: list, outputs: tuple) -> Callable[[tuple], tuple | None]:
    """One function of the integer fields' values: ``None`` when a guard comes out otherwise than in the
    trace, else the outputs' values. The outputs (sums over tensors of products of dims) are collected into
    sums of products first, {sorted factors: coefficient}, with // and % results as factors: a dozen terms,
    not hundreds of operations."""
    names: dict[int, str] = {}  # node -> the local (or literal) that holds its value
    polys: dict[int, dict[tuple[str, ...], int] | None] = {}
    lines: list[str] = []
    keep: list[tuple] = []  # ids stay unique while this runs

    def local(n: tuple, expr: str) -> None:
        names[id(n)] = name = f"t{len(lines)}"
        lines.append(f"    {name} = {expr}")

    def computed(n: tuple) -> str:
        """The local for ``n``, written out operation by operation (children are named already)."""
        known = names.get(id(n))
        if known is None:
            kind = n[0]
            local(n, f"-{names[id(n[1])]}" if kind == "neg" else f"{names[id(n[1])]} {kind} {names[id(n[2])]}")
            known = names[id(n)]
        return known

    def name_all(roots: list[tuple]) -> None:
        for n in _postorder(roots, names):
            keep.append(n)
            if n[0] == "f":
                local(n, f"v[{n[1]}]")
            elif n[0] == "c":
                names[id(n)] = repr(n[1])
            else:
                computed(n)

    def collect(root: tuple) -> str:
        for n in _postorder([root], polys):
            keep.append(n)
            kind = n[0]
            out: dict[tuple[str, ...], int] | None
            if kind == "c":
                out = {(): n[1]} if n[1] else {}
            elif kind in ("f", "//", "%"):
                name_all([n])
                out = {(names[id(n)],): 1}
            elif kind == "neg":
                a = polys[id(n[1])]
                out = None if a is None else {k: -c for k, c in a.items()}
            else:
                a, b = polys[id(n[1])], polys[id(n[2])]
                if a is None or b is None:
                    out = None
                elif kind == "*":
                    out = {}
                    for ka, ca in a.items():
                        for kb, cb in b.items():
                            k = tuple(sorted(ka + kb))
                            out[k] = out.get(k, 0) + ca * cb
                else:
                    out = dict(a)
                    sign = 1 if kind == "+" else -1
                    for k, c in b.items():
                        out[k] = out.get(k, 0) + sign * c
                if out is not None:
                    out = {k: c for k, c in out.items() if c}
                    if len(out) > _TERMS:
                        out = None
            polys[id(n)] = out
        p = polys[id(root)]
        if p is None:
            name_all([root])
            return names[id(root)]
        terms = ["*".join(([] if c == 1 and k else [repr(c)]) + list(k)) for k, c in sorted(p.items())]
        return " + ".join(terms) or "0"

    for op, a, b, want in guards:
        name_all([a, b])
        lines.append(f"    if {'not ' if want else ''}({names[id(a)]} {op} {names[id(b)]}): return None")
    outs = [collect(o) if type(o) is tuple else repr(o) for o in outputs]
    src = "def template(v):\n" + "\n".join(lines) + f"\n    return ({''.join(o + ', ' for o in outs)})\n"
    env: dict[str, Any] = {}
    exec(compile(src, "<bertcalc template>", "exec"), env)
    return env["template"]


def _compile_output(guards: list, out: Any) -> Callable[[tuple], Any]:
    """One function of the inputs' values that returns ``None`` when a guard comes out otherwise, else a copy
    of ``out`` with every Sym in it replaced by its value: records (bertcalc's frozen and record classes),
    tuples, lists, dicts and plain values are rebuilt as they were traced; anything else is Untraceable."""
    sums: list[tuple] = []  # the Syms, in the order the copy reads them
    consts: list[Any] = []
    lines: list[str] = []
    made: dict[int, str] = {}

    def const(x: Any) -> str:
        consts.append(x)
        return f"K[{len(consts) - 1}]"

    def copy(x: Any) -> str:
        t = type(x)
        if t is Sym:
            sums.append(x.n)
            return f"s[{len(sums) - 1}]"
        if x is None or t is bool or t is int or t is str:
            return repr(x)
        if t is float:
            return const(x)
        if t is tuple:
            return "(" + "".join(copy(e) + ", " for e in x) + ")"
        if t is list:
            return "[" + ", ".join(copy(e) for e in x) + "]"
        if t is dict:
            return "{" + ", ".join(f"{copy(k)}: {copy(v)}" for k, v in x.items()) + "}"
        if hasattr(t, "__dataclass_fields__") and hasattr(x, "__dict__"):
            known = made.get(id(x))
            if known is not None:
                return known
            name = made[id(x)] = f"o{len(made)}"
            fields = ", ".join(f"{k!r}: {copy(v)}" for k, v in x.__dict__.items())
            lines.append(f"    {name} = new({const(t)})")
            lines.append(f"    {name}.__dict__.update({{{fields}}})")
            return name
        raise Untraceable(f"a {t.__name__} in the output")

    root = copy(out)
    values = _compile(guards, tuple(sums))
    src = "def output(s):\n" + "\n".join(lines) + f"\n    return {root}\n"
    env: dict[str, Any] = {"K": consts, "new": object.__new__}
    exec(compile(src, "<bertcalc template output>", "exec"), env)
    build = env["output"]

    def template(v: tuple) -> Any:
        s = values(v)
        return None if s is None else build(s)

    return template


def trace_call(fn: Callable[[list], Any], values: tuple[int, ...]) -> Callable[[tuple], Any]:
    """``fn`` run once on Syms standing for ``values``, compiled (see :func:`_compile_output`)."""
    from .families._parts import TRACING

    guards: list = []
    syms = [Sym(v, ("f", i), guards) for i, v in enumerate(values)]
    TRACING[0] = True
    _LEFT[0] = BUDGET
    try:
        out = fn(syms)
    except Exception as exc:
        raise Untraceable(f"{type(exc).__name__}: {exc}") from None
    finally:
        TRACING[0] = False
    return _compile_output(guards, out)


class Totals:
    """The part of an architecture that ``count`` reads up front, for :func:`bertcalc.counting.report`."""

    __slots__ = ("family", "head", "model_class", "notes", "state_dict_parameters", "total_parameters",
                 "unused_fields")
    adapted = None

    def __init__(self, total: int, state_dict: int, family: str, model_class: str, head: str,
                 unused_fields: tuple[str, ...], notes: tuple[str, ...]) -> None:  # _totals_of's order
        self.total_parameters, self.state_dict_parameters = total, state_dict
        self.family, self.model_class, self.head = family, model_class, head
        self.unused_fields, self.notes = unused_fields, notes


def _totals_of(a: Any) -> tuple:
    """What ``count`` reads of an architecture (or of a :class:`Totals`), in the order Totals takes them."""
    return (a.total_parameters, a.state_dict_parameters, a.family, a.model_class, a.head, tuple(a.unused_fields),
            tuple(a.notes))


def _with_sizes(cfg: Any, syms: list) -> Any:
    """``cfg`` with its integer fields replaced by ``syms`` (in field order), unvalidated."""
    names = _fields(type(cfg))[0]
    return type(cfg).model_construct(**{**cfg.__dict__, **dict(zip(names, syms[:len(names)], strict=True))})


def trace(cfg: Any, head: str, pooler: bool, build: Callable[..., Any]) -> Callable[[tuple], Totals | None]:
    """``build(cfg', head, pooler)`` run on ``cfg`` with its integer fields as symbols, compiled: a function of
    their values that gives the architecture's :class:`Totals`, or None where a guard comes out otherwise."""
    ints = key_of(cfg, head, pooler)[1]
    facts = trace_call(lambda syms: _totals_of(build(_with_sizes(cfg, syms), head, pooler)), ints)

    def totals(v: tuple) -> Totals | None:
        out = facts(v)
        return None if out is None else Totals(*out)

    return totals


_FIELDS: dict[type, tuple[tuple[str, ...], Callable, Callable, Callable | None]] = {}
_INT = {int}


def _fields(cls: type) -> tuple[tuple[str, ...], Callable, Callable, Callable | None]:
    """A config class's integer fields (declared ``int``: what a trace makes symbols), and getters off an
    instance ``__dict__``: the integer fields' values, every other field's, and the fields that may hold a float
    (None if none do)."""
    known = _FIELDS.get(cls)
    if known is None:
        names = tuple(k for k, f in cls.model_fields.items() if f.annotation is int)
        other = tuple(k for k in cls.model_fields if k not in names)
        floats = tuple(k for k in other if "float" in str(cls.model_fields[k].annotation))

        def getter(keys: tuple[str, ...]) -> Callable:
            return operator.itemgetter(*keys) if len(keys) > 1 else lambda d: tuple(d[k] for k in keys)

        known = _FIELDS[cls] = (names, getter(names), getter(other), getter(floats) if floats else None)
    return known


def key_of(cfg: Any, head: str, pooler: bool) -> tuple[tuple | None, tuple]:
    """``(key, ints)``: the structure a template is filed under (the config class, the head, the pooler, every
    field that is not an integer), and the integer fields' values in field order; ``key`` is None for a config
    whose integer fields hold something else (one made by ``model_construct``), which is never templated.
    A float is keyed by its repr too: 0.0 and -0.0 are equal, but a report shows each as it was given."""
    cls = type(cfg)
    _, ints_of, rest_of, floats_of = _fields(cls)
    d = cfg.__dict__
    ints = ints_of(d)
    if set(map(type, ints)) != _INT:
        return None, ints
    return (cls, head, pooler, rest_of(d), None if floats_of is None else tuple(map(repr, floats_of(d)))), ints


class Templates:
    """Templates by structure, each structure holding a few (one per outcome of its guards), bounded. A structure
    is traced the second time it is computed, so that one command (a CLI call) costs what it did before."""

    PER_KEY = 8
    KEYS = 256

    def __init__(self) -> None:
        self.by_key: dict[tuple, list[Callable[[tuple], Any]] | None] = {}
        self.hits = 0  # answers a template gave (for tests and profiling)

    def answer(self, key: tuple | None, ints: tuple, real: Callable[[], Any], traced: Callable[[], Callable],
               same: Callable[[Any, Any], bool]) -> tuple[Any, bool]:
        """``(value, True)`` from a template of ``key`` whose guards admit ``ints``; else ``(real(), False)``,
        tracing the structure (``traced()`` compiles a template) when it comes round again. A template is kept
        only when it gives, for the config it was traced on, what ``real()`` gave (``same``)."""
        try:
            kept = self.by_key.get(key, []) if key is not None else None
        except TypeError:  # a field value that is no dictionary key
            kept = None
        if kept is None:  # untraceable, or not to be templated
            return real(), False
        for fn in kept:
            try:
                out = fn(ints)
            except ArithmeticError:  # a // 0 in a guard: this config is not the template's
                continue
            if out is not None:
                self.hits += 1
                return out, True
        value = real()  # the real computation first: its errors are the user's
        if key not in self.by_key:  # traced the second time it is seen: a command that runs once never pays
            self._file(key, [])
            return value, False
        if len(kept) >= self.PER_KEY:
            return value, False
        try:
            fn = traced()
            out = fn(ints)
            if out is None or not same(out, value):
                raise Untraceable("the template disagrees with the computation it was traced from")
        except Exception:  # Untraceable, a // 0 at these sizes, or a tracer bug: the caller has its answer already,
            # and a template is only ever a shortcut to it
            if not kept:  # a structure never traced: computed from now on (one that was keeps its templates)
                self._file(key, None)
            return value, False
        self._file(key, [*kept, fn])
        return value, False

    def totals(self, cfg: Any, head: str, pooler: bool, build: Callable[..., Any]) -> tuple[Totals | None, Any]:
        """``(totals, arch)``: the totals from a template (``arch`` None), or, where none answers, the
        architecture built (and traced, to answer the next config of its structure)."""
        key, ints = key_of(cfg, head, pooler)
        value, hit = self.answer(key, ints, lambda: build(cfg, head, pooler), lambda: trace(cfg, head, pooler, build),
                                 lambda t, arch: _totals_of(t) == _totals_of(arch))
        return (value, None) if hit else (None, value)

    def call(self, name: str, cfg: Any, head: str, pooler: bool, sizes: tuple, options: tuple,
             run: Callable[..., Any], same: Callable[[Any, Any], bool]) -> Any:
        """``run(cfg, *sizes)`` (a report), from a template of its structure where one answers: ``name`` (the
        computation), the class, every non-integer field and ``options`` key it; the config's integer fields
        and ``sizes`` (whole numbers: batch, seq) are its symbols. ``same(template's, run's)`` accepts a
        template for the config it was traced on."""
        key, ints = key_of(cfg, head, pooler)
        if key is None or any(type(x) is not int for x in sizes):
            return run(cfg, *sizes)

        def traced() -> Callable:
            return trace_call(lambda syms: run(_with_sizes(cfg, syms), *syms[len(ints):]), ints + sizes)

        return self.answer((name, key, options), ints + sizes, lambda: run(cfg, *sizes), traced, same)[0]

    def _file(self, key: tuple, value: list | None) -> None:
        if key not in self.by_key and len(self.by_key) >= self.KEYS:
            self.by_key.pop(next(iter(self.by_key)))
        self.by_key[key] = value


TEMPLATES = Templates()
