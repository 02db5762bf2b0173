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
import re
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


TRACING = [False]  # set while a trace runs: memos keyed by sizes (families._parts, memsim) are bypassed, since a
# key would pin them
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


def top(*xs: Any) -> Any:
    """``max(xs)`` of sizes. Under a trace, where a ``max`` would guard which one is larger, this is one symbol
    for the largest, and the template computes the max itself: a ledger's high-water mark follows every
    config of its structure, not only those whose largest moment is the traced one's."""
    for x in xs:
        if type(x) is Sym:
            nodes = [_node(y) for y in xs]
            if None in nodes:  # a float among them: compared, as max would
                return max(xs)
            _spend()
            return Sym(max(y.v if type(y) is Sym else y for y in xs), ("max", *nodes), x.g)
    return max(xs)


class Pick:
    """:func:`largest`'s answer under a trace: a label the template picks by the sizes it computes. It is only
    ever carried into the output; anything else done with it (a comparison, a format) stops the trace."""

    __slots__ = ("n",)

    def __init__(self, n: tuple) -> None:
        self.n = n

    def _refuse(self, *args: Any) -> Any:
        raise TypeError("a label picked by sizes is only carried into the output")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = __str__ = __format__ = __bool__ = _refuse  # type: ignore[assignment]
    __repr__ = __add__ = __radd__ = __contains__ = __len__ = __iter__ = _refuse  # type: ignore[assignment]


_PICKERS: dict[tuple[str, ...], Callable[..., str]] = {}


def largest(pairs: tuple[tuple[Any, str], ...]) -> Any:
    """``max(pairs)[1]`` for (size, label) pairs: the label of the largest size, the larger label on a tie.
    Under a trace, a :class:`Pick` the template resolves, rather than guards on which size is largest."""
    if not any(type(v) is Sym for v, _ in pairs):
        return max(pairs)[1]
    nodes = [_node(v) for v, _ in pairs]
    if None in nodes:
        return max(pairs)[1]
    labels = tuple(label for _, label in pairs)
    fn = _PICKERS.get(labels)
    if fn is None:
        def fn(*sizes: int) -> str:
            return max(zip(sizes, labels, strict=True))[1]

        fn = _PICKERS.setdefault(labels, fn)
    _spend()
    return Pick(("pick", fn, *nodes))


def opaque(fn: Callable[[int], int], x: Any, nonneg: bool = False) -> Any:
    """``fn(x)``; for a Sym, a symbol whose value the template gets by calling ``fn`` (a function of one
    integer, with branches of its own: the allocator's rounding) rather than by guarding its branches.
    ``nonneg``: ``fn`` is never negative."""
    if type(x) is not Sym:
        return fn(x)
    _spend()
    return Sym(fn(x.v), ("call", fn, x.n, nonneg), x.g)


# ---------------------------------------------------------------------------------------------- tracing

class Untraceable(Exception):
    """The build did something a template cannot follow; that structure is built every time."""


def _postorder(roots: list[tuple], done: dict[int, Any]) -> list[tuple]:
    """Every node under ``roots`` that ``done`` lacks, each once, children first (iteratively: a sum over 10^4
    tensors is a chain 10^4 deep). A node's children are its tuple members."""
    seen: set[int] = set()
    order: list[tuple] = []
    stack: list[tuple[tuple, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        n, ready = stack.pop()
        if id(n) in seen or id(n) in done:
            continue
        kids = [c for c in n[1:] if type(c) is tuple]
        if ready or not kids:
            seen.add(id(n))
            order.append(n)
            continue
        stack.append((n, True))
        stack.extend((c, False) for c in reversed(kids) if id(c) not in seen and id(c) not in done)
    return order


_TERMS = 64  # past this many terms a sum is computed once into a local of its own

_NAME = re.compile(r"\b[xaskK][0-9]+\b")  # the locals an expression reads
Poly = dict  # {sorted tuple of atom names: coefficient}: a sum of products of atoms


def _atoms(p: Poly) -> set[str]:
    return {a for k in p for a in k}


class _Linear:
    """Nodes as sums of products of *atoms*: the integer fields, and a local for each distinct ``//``, ``%``,
    :func:`opaque` call and :func:`top`, numbered in the order they are met. Two nodes that are the same sum
    are one (a size the trace computes a hundred times is computed once), and a :func:`top` drops every
    argument that another one is at least everywhere: ``max(live, live + x)`` for an ``x`` that cannot be
    negative is ``live + x``. What cannot be negative is known of atoms only: a field the guards keep at 0 or
    more, an opaque call declared so, and sums, quotients and maxima of such.

    An atom's Python is written only if the guards or the outputs read it (:meth:`source`): a ledger makes a
    high-water mark at every allocation, and all but the last are superseded."""

    def __init__(self, values: tuple[int, ...] | None) -> None:
        self.values = values
        self.defs: dict[str, tuple[Callable[[], str], Any]] = {}  # atom -> (its Python, made late; what it reads)
        self.lines: list[tuple[str, str]] = []  # (local, expression), written in order by :meth:`source`
        self.sums: dict[tuple, str] = {}  # a sum's key -> the local that holds it
        self.recent: list[tuple[str, Poly]] = []  # the last sums given locals, to write the next as one plus a few
        self.checks: list[str] = []  # the fields' signs, checked before anything is computed from them
        self.consts: list[Any] = []
        self._const_at: dict[int, int] = {}
        self.atoms: dict[Any, str] = {}  # canonical key -> local
        self.nonneg: set[str] = set()
        self._signed: dict[tuple[str, ...], bool] = {}  # atoms are marked before any product of them is asked
        self.maxargs: dict[str, list[Poly]] = {}
        self.polys: dict[int, Poly] = {}
        self.keep: list[tuple] = []  # ids stay unique while this runs

    # ------------------------------------------------------------------------------------------ sums

    @staticmethod
    def key(p: Poly) -> tuple:
        return tuple(sorted(p.items()))

    def expr(self, p: Poly) -> str:
        """``p`` as Python, with the atom most terms share factored out, and so on inside (Horner's rule in
        several variables): ``L*(a + b + c) + d``, not ``a*L + b*L + c*L + d``."""
        counts: dict[str, int] = {}
        for k in p:
            for a in set(k):
                counts[a] = counts.get(a, 0) + 1
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0]), default=(None, 0))
        if best[1] < 2:
            terms = ["*".join(([] if c == 1 and k else [repr(c)]) + list(k)) for k, c in sorted(p.items())]
            return " + ".join(terms) or "0"
        a = best[0]
        inner: Poly = {}
        rest: Poly = {}
        for k, c in p.items():
            if a in k:
                i = k.index(a)
                inner[k[:i] + k[i + 1:]] = c
            else:
                rest[k] = c
        out = f"{a}*({self.expr(inner)})"
        return f"{out} + {self.expr(rest)}" if rest else out

    def positive(self, p: Poly) -> bool:
        """Whether ``p`` is 0 or more for every value the guards admit."""
        return all(c >= 0 and self.signed(k) for k, c in p.items())

    def covers(self, r: Poly, q: Poly) -> bool:
        """Whether ``r >= q`` for every value the guards admit: each term of ``r - q`` is 0 or more."""
        ok = self.signed
        for k, c in q.items():
            d = r.get(k, 0) - c
            if d < 0 or (d and not ok(k)):
                return False
        return all(k in q or (c >= 0 and ok(k)) for k, c in r.items())

    def signed(self, k: tuple[str, ...]) -> bool:
        """Whether the product ``k`` of atoms is 0 or more."""
        known = self._signed.get(k)
        if known is None:
            known = self._signed[k] = all(a in self.nonneg for a in k)
        return known

    @staticmethod
    def add(a: Poly, b: Poly, sign: int = 1) -> Poly:
        out = dict(a)
        for k, c in b.items():
            c = out.get(k, 0) + sign * c
            if c:
                out[k] = c
            else:
                out.pop(k, None)
        return out

    @staticmethod
    def mul(a: Poly, b: Poly) -> Poly:
        out: Poly = {}
        for ka, ca in a.items():
            for kb, cb in b.items():
                k = tuple(sorted(ka + kb))
                out[k] = out.get(k, 0) + ca * cb
        return {k: c for k, c in out.items() if c}

    def atom(self, key: Any, make: Callable[[], str], reads: set[str] | Callable[[], set[str]],
             nonneg: bool) -> Poly:
        """The atom for ``key``: a local whose Python ``make()`` writes, if it is read at all; ``reads``: the atoms
        that Python reads (or a function that finds them)."""
        name = self.atoms.get(key)
        if name is None:
            name = self.atoms[key] = f"a{len(self.atoms)}"
            self.defs[name] = (make, reads)
            if nonneg:
                self.nonneg.add(name)
        return {(name,): 1}

    def total(self, p: Poly) -> str:
        """An expression for the sum ``p``: a local of its own, written as a recent sum's local plus the few
        terms between them where that is shorter (a ledger's totals differ from one another by a tensor or
        two), so a hundred sums of fifty terms cost a few hundred additions. Called while :meth:`source`
        writes, so every local it reads is written before it."""
        if len(p) <= 3:
            return self.expr(p)
        k = self.key(p)
        name = self.sums.get(k)
        if name is not None:
            return name
        base, diff = None, p
        for q_name, q in self.recent[-16:]:
            d = self.add(p, q, -1)
            if len(d) < len(diff) - 1:
                base, diff = q_name, d
        name = self.sums[k] = f"s{len(self.sums)}"
        self.lines.append((name, self.expr(p) if base is None else base + (f" + {self.expr(diff)}" if diff else "")))
        self.recent.append((name, p))
        return name

    def small(self, p: Poly) -> Poly:
        if len(p) <= _TERMS:
            return p
        return self.atom(("sum", self.key(p)), lambda: self.total(p), _atoms(p), self.positive(p))

    def const(self, x: Any) -> str:
        i = self._const_at.get(id(x))
        if i is None:
            i = self._const_at[id(x)] = len(self.consts)
            self.consts.append(x)
        return f"k{i}"

    def source(self, roots: set[str]) -> None:
        """Write, in the order they were made, the atoms ``roots`` read, directly or not (into :attr:`lines`)."""
        need: set[str] = set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n in need or n not in self.defs:
                continue
            need.add(n)
            reads = self.defs[n][1]
            stack.extend(reads() if callable(reads) else reads)
        for name, (make, _) in self.defs.items():
            if name in need:
                self.lines.append((name, make()))

    # ------------------------------------------------------------------------------------------ nodes

    def field(self, i: int) -> Poly:
        name = f"x{i}"
        if ("f", i) not in self.atoms:
            self.atoms[("f", i)] = name
            if self.values is not None and self.values[i] >= 0:
                self.checks.append(f"    if {name} < 0: return None")
                self.nonneg.add(name)
        return {(name,): 1}

    def divide(self, kind: str, a: Poly, b: Poly) -> Poly:
        if len(b) == 1 and () in b:  # by a constant
            k = b[()]
            if k and all(c % k == 0 for c in a.values()):  # (k·P) // k is P, (k·P) % k is 0
                return {m: c // k for m, c in a.items()} if kind == "//" else {}
            if k and (not a or list(a) == [()]):
                return {(): v} if (v := _OPS[kind](a.get((), 0), k)) else {}
        return self.atom((kind, self.key(a), self.key(b)), lambda: f"({self.total(a)}) {kind} ({self.total(b)})",
                         _atoms(a) | _atoms(b), self.positive(a) and self.positive(b))

    def maximum(self, args: list[Poly]) -> Poly:
        kept: list[Poly] | None = None
        for p in args:
            flat = [p]
            if len(p) == 1:
                ((k, c),) = p.items()
                if c == 1 and len(k) == 1 and k[0] in self.maxargs:  # a max of maxima is one max
                    flat = self.maxargs[k[0]]
            if kept is None:  # a max's own arguments are pruned already
                kept = list(flat)
                continue
            for q in flat:
                if any(self.covers(r, q) for r in kept):
                    continue  # some r >= q everywhere
                kept = [r for r in kept if not self.covers(q, r)] + [q]
        assert kept is not None
        if len(kept) == 1:
            return kept[0]
        args_ = kept  # keyed by its place, not its value: a max computed twice is one node already
        out = self.atom(("max", len(self.atoms)), lambda: f"max({', '.join(self.total(p) for p in args_)})",
                        lambda: set().union(*map(_atoms, args_)), any(self.positive(p) for p in kept))
        self.maxargs[next(iter(out))[0]] = kept
        return out

    def poly(self, root: tuple) -> Poly:
        for n in _postorder([root], self.polys):
            self.keep.append(n)
            kind = n[0]
            if kind == "c":
                out = {(): n[1]} if n[1] else {}
            elif kind == "f":
                out = self.field(n[1])
            elif kind == "neg":
                out = {k: -c for k, c in self.polys[id(n[1])].items()}
            elif kind == "max":
                out = self.maximum([self.polys[id(c)] for c in n[1:]])
            elif kind == "pick":  # ("pick", fn, *sizes): a label, not a number
                fn, sizes = n[1], [self.polys[id(c)] for c in n[2:]]
                out = self.atom(("pick", fn, *map(self.key, sizes)),
                                lambda fn=fn, sizes=sizes: f"{self.const(fn)}({', '.join(map(self.total, sizes))})",
                                set().union(*map(_atoms, sizes)), False)
            elif kind == "call":  # ("call", fn, arg, nonneg)
                fn, a = n[1], self.polys[id(n[2])]
                if not a or list(a) == [()]:
                    v = fn(a.get((), 0))
                    out = {(): v} if v else {}
                else:
                    out = self.atom(("call", fn, self.key(a)),
                                    lambda fn=fn, a=a: f"{self.const(fn)}({self.total(a)})", _atoms(a), n[3])
            else:
                a, b = self.polys[id(n[1])], self.polys[id(n[2])]
                if kind == "*":
                    out = self.mul(a, b)
                elif kind == "+" or kind == "-":
                    out = self.add(a, b, 1 if kind == "+" else -1)
                else:
                    out = self.divide(kind, a, b)
            self.polys[id(n)] = self.small(out)
        return self.polys[id(root)]


def _compile(guards: list, outputs: tuple, values: tuple[int, ...] | None = None) -> Callable[[tuple], tuple | None]:
    """One function of the integer fields' values: ``None`` when a guard comes out otherwise than in the
    trace, else the outputs' values. Every node is a sum of products first (:class:`_Linear`), so what the
    build computes a hundred times over is a dozen terms; a guard whose two sides differ by what is
    0 or more (or a constant) everywhere holds everywhere, and is dropped. ``values``: the traced ones, whose
    signs the template then checks (a size at 0 or more makes sums of it comparable)."""
    lin = _Linear(values)
    tests: list[tuple[str, Poly, bool]] = []
    seen: set[tuple] = set()
    flip = {"!=": "==", "<": ">=", "<=": ">"}
    for op, a, b, want in guards:
        if op in flip:  # one spelling of each test, so that x != 0 and not x == 0 are one
            op, want = flip[op], not want
        d = lin.add(lin.poly(a), lin.poly(b), -1)
        if not d or list(d) == [()]:
            if _CMPS[op](d.get((), 0), 0) != want:
                raise Untraceable("a guard that cannot hold")
            continue
        if op == ">=" and want and lin.positive(d):
            continue  # d >= 0 everywhere
        if op == ">" and not want and lin.positive({k: -c for k, c in d.items()}):
            continue  # d <= 0 everywhere
        k = (op, lin.key(d), want)
        if k not in seen:
            seen.add(k)
            tests.append((op, d, want))
    outs = [lin.poly(o) if type(o) is tuple else o for o in outputs]
    # only what the guards and the outputs read is written: a ledger's earlier high-water marks are superseded
    lin.source(set().union(*(_atoms(d) for _, d, _ in tests), *(_atoms(p) for p in outs if type(p) is dict)))
    tests_py = [f"    if {'not ' if want else ''}({lin.total(d)} {op} 0): return None" for op, d, want in tests]
    outs_py = [lin.total(p) if type(p) is dict else repr(p) for p in outs]
    body = lin.lines
    need = set(_NAME.findall("\n".join([e for _, e in body] + tests_py + outs_py)))
    checks = lin.checks  # every sign a dominance was read under, whether or not its field is read after
    need.update(c.split()[1] for c in checks)
    fields = [f"    x{i} = v[{i}]" for i in sorted(int(n[1:]) for n in need if n[0] == "x")]
    fields += [f"    k{i} = K[{i}]" for i in range(len(lin.consts))]
    # each guard as soon as what it reads is computed: a config of another regime is turned away early
    at = {name: i + 1 for i, (name, _) in enumerate(body)}
    placed: list[list[str]] = [[] for _ in range(len(body) + 1)]
    for t in tests_py:
        placed[max((at.get(n, 0) for n in _NAME.findall(t)), default=0)].append(t)
    lines = fields + checks + placed[0]
    for i, (name, expr) in enumerate(body):
        lines.append(f"    {name} = {expr}")
        lines += placed[i + 1]
    src = "def template(v):\n" + "\n".join(lines) + f"\n    return ({''.join(o + ', ' for o in outs_py)})\n"
    env: dict[str, Any] = {"K": lin.consts}
    exec(compile(src, "<bertcalc template>", "exec"), env)
    env["template"].source = src  # for reading a template when debugging it
    return env["template"]


def _compile_output(guards: list, out: Any, values: tuple[int, ...] | None = None) -> Callable[[tuple], Any]:
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
        if t is Sym or t is Pick:
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
            fields = [(k, copy(v)) for k, v in x.__dict__.items()]  # first: what the fields hold is made before
            lines.append(f"    {name} = new({const(t)})")
            lines.append(f"    d = {name}.__dict__")  # stored one by one: 7.1 -> 5.0 us for a flops report
            lines.extend(f"    d[{k!r}] = {e}" for k, e in fields)
            return name
        raise Untraceable(f"a {t.__name__} in the output")

    root = copy(out)
    numbers = _compile(guards, tuple(sums), values)
    src = "def output(s):\n" + "\n".join(lines) + f"\n    return {root}\n"
    env: dict[str, Any] = {"K": consts, "new": object.__new__}
    exec(compile(src, "<bertcalc template output>", "exec"), env)
    build = env["output"]

    def template(v: tuple) -> Any:
        s = numbers(v)
        return None if s is None else build(s)

    return template


def trace_call(fn: Callable[[list], Any], values: tuple[int, ...]) -> Callable[[tuple], Any]:
    """``fn`` run once on Syms standing for ``values``, compiled (see :func:`_compile_output`)."""
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
    return _compile_output(guards, out, values)


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
    A zero float is keyed by its repr too: 0.0 and -0.0 are equal, but a report shows each as it was given.
    (A config's floats are floats, never ints or NaN: validation makes them so.)"""
    cls = type(cfg)
    _, ints_of, rest_of, floats_of = _fields(cls)
    d = cfg.__dict__
    ints = ints_of(d)
    if set(map(type, ints)) != _INT:
        return None, ints
    floats = None if floats_of is None else floats_of(d)
    if floats is not None and 0.0 not in floats:  # -0.0 is the only float equal to another (no NaN in configs)
        floats = None
    return (cls, head, pooler, rest_of(d), None if floats is None else tuple(map(repr, floats))), ints


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
        for i, fn in enumerate(kept):
            try:
                out = fn(ints)
            except ArithmeticError:  # a // 0 in a guard: this config is not the template's
                continue
            if out is not None:
                self.hits += 1
                if i:  # the regime asked last is tried first next time
                    kept.insert(0, kept.pop(i))
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
