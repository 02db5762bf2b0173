"""Closed-form parameter formulas, derived from tensor shapes.

A formula here is never written by hand: the code reads the symbolic dimensions of each tensor
(``vocab_size × hidden_size``) and adds them up as a polynomial. It exists only to *show* the arithmetic
(``--explain``); every number bertcalc reports comes from the shapes themselves, and the tests check that
each polynomial evaluates to the same integer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from .records import frozen

# One-letter names of config fields, registered by each family's config class (``SYMBOLS``) when it is
# defined: ``hidden_size`` and DistilBERT's ``dim`` are both H.
SHORT: dict[str, str] = {}

# Canonical order of symbols inside a product, by their letters, so that [I, H] and [H, I] are the same
# monomial: layers, groups, vocabulary, positions, token types, embedding width, hidden, FFN, labels.
LETTER_ORDER = "LGVPTEHIC"


def register(symbols: Mapping[str, str]) -> None:
    SHORT.update(symbols)
    short.cache_clear()  # a family imported later may name a symbol short() has already answered


Monomial = tuple[str, ...]  # sorted symbols, with repeats: ("hidden_size", "hidden_size") is hidden_size²


def _rank(symbol: str) -> tuple[int, str]:
    letter = SHORT.get(symbol, "")
    i = LETTER_ORDER.find(letter) if letter else -1
    return (i if i >= 0 else len(LETTER_ORDER), symbol)


def monomial(symbols: Iterable[str]) -> Monomial:
    return tuple(sorted(symbols, key=_rank))


@frozen
class Polynomial:
    """A sum of ``coefficient × product of symbols``, in the order terms first appeared."""

    terms: tuple[tuple[Monomial, int], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[Monomial, int]]) -> Polynomial:
        acc: dict[Monomial, int] = {}
        for mono, coef in pairs:
            acc[mono] = acc.get(mono, 0) + coef
        return cls(tuple((m, c) for m, c in acc.items() if c))

    def __add__(self, other: Polynomial) -> Polynomial:
        return Polynomial.of(self.terms + other.terms)

    def scale(self, symbol: str | None, factor: int = 1) -> Polynomial:
        """Multiply every term by ``symbol`` (if given) and by the integer ``factor``."""
        extra = (symbol,) if symbol else ()
        return Polynomial.of((monomial(m + extra), c * factor) for m, c in self.terms)

    def evaluate(self, values: Mapping[str, int]) -> int:
        total = 0
        for mono, coef in self.terms:
            term = coef
            for s in mono:
                term *= values[s]
            total += term
        return total

    def _ordered(self) -> list[tuple[Monomial, int]]:
        # highest degree first; ties keep the order in which the tensors appeared
        return sorted(self.terms, key=lambda t: -len(t[0]))

    def render(self, values: Mapping[str, int] | None = None, short: bool = False) -> str:
        """``hidden_size² + hidden_size``; with ``values``: ``768² + 768``; with ``short``: ``H² + H``."""
        parts = []
        for mono, coef in self._ordered():
            parts.append(_term(mono, coef, values, short))
        return " + ".join(parts) if parts else "0"

    def render_factored(self, short: bool = True) -> str:
        """Pull out the symbols every term shares: ``(V + P + T + 2)·H``."""
        if not self.terms:
            return "0"
        common = set(self.terms[0][0])
        for mono, _ in self.terms[1:]:
            common &= set(mono)
        if not common or len(self.terms) == 1:
            return self.render(short=short)
        # take out one power of each shared symbol
        factor = monomial(common)
        rest = []
        for mono, coef in self.terms:
            m = list(mono)
            for s in factor:
                m.remove(s)
            rest.append((tuple(m), coef))
        inner = Polynomial(tuple(rest)).render(short=short)
        return f"({inner})·{_product(factor, None, short)}"


def _name(symbol: str, short: bool) -> str:
    return SHORT.get(symbol, symbol) if short else symbol


def _product(mono: Monomial, values: Mapping[str, int] | None, short: bool) -> str:
    out = []
    i = 0
    while i < len(mono):
        s = mono[i]
        power = 1
        while i + power < len(mono) and mono[i + power] == s:
            power += 1
        base = str(values[s]) if values is not None else _name(s, short)
        out.append(base + _superscript(power) if power > 1 else base)
        i += power
    return ("·" if short and values is None else " × ").join(out)


def _term(mono: Monomial, coef: int, values: Mapping[str, int] | None, short: bool) -> str:
    if not mono:
        return str(coef)
    body = _product(mono, values, short)
    if coef == 1:
        return body
    sep = "" if short and values is None else " × "
    return f"{coef}{sep}{body}"


_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _superscript(n: int) -> str:
    return str(n).translate(_SUP)


def factor(symbol: str) -> tuple[int, str]:
    """A dimension that is a whole multiple of a config field, ``3·hidden_size`` (ModernBERT's fused QKV):
    ``(3, "hidden_size")``; any other symbol is ``(1, symbol)``."""
    k, sep, field = symbol.partition("·")
    return (int(k), field) if sep and k.isdigit() else (1, symbol)


@lru_cache(maxsize=1024)
def short(symbol: str | None) -> str | None:
    """A config field's one-letter name (``hidden_size`` -> ``H``, ``3·hidden_size`` -> ``3H``); other symbols as
    they are."""
    if not symbol:
        return None
    k, field = factor(symbol)
    return f"{k}{SHORT.get(field, field)}" if k != 1 else SHORT.get(symbol, symbol)
