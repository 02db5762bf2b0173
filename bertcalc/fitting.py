"""The largest batch that fits, without bisection.

A step's peak memory is nearly affine in the batch B at a fixed sequence length: every activation is B times a
per-sequence size, rounded by the allocator, and the peak is the largest of a few such sums (plus constants:
the weights, the optimizer states). So the answer is found like a root of a nearly straight line: a secant
step between a point that fits and one that does not, then a local check of its neighbour, in a bracket that
only shrinks. Exact: the result ``b`` always has ``value(b) <= budget`` and ``value(b + 1) > budget`` (or
``b`` is the limit), checked by full evaluations; with ``value`` nondecreasing in B, which bisection assumes
too, that is the largest B that fits. When a secant step shrinks the bracket by less than half, the next step
bisects, so the worst case stays O(log limit) evaluations (at most 3 per halving); the usual case is 4 to 6.
"""

from __future__ import annotations

from collections.abc import Callable

LIMIT = 1 << 40


def largest(value: Callable[[int], int], budget: int, limit: int = LIMIT, known: dict[int, int] | None = None,
            *, above: int | None = None, guess: int | None = None) -> int:
    """The largest ``b`` in [1, ``limit``] with ``value(b) <= budget`` (0 if ``value(1)`` exceeds it), for a
    nondecreasing ``value``. ``known``: values already computed (``{batch: value}``), used as brackets;
    ``above``: a batch known not to fit, whose value is not known (a bracket without an evaluation);
    ``guess``: where to look first (its neighbour is checked too). Neither changes the answer, only its cost."""
    seen: dict[int, int] = dict(known or {})

    def v(b: int) -> int:
        if b not in seen:
            seen[b] = value(b)
        return seen[b]

    fitting = [b for b, x in seen.items() if x <= budget and 1 <= b <= limit]
    if not fitting and guess is not None and 1 <= guess <= limit and v(guess) <= budget:
        fitting = [guess]  # the guess fits: batch 1 need not be evaluated
    if not fitting and v(1) > budget:  # a known batch that fits makes batch 1's evaluation needless
        return 0
    lo = max(fitting, default=1)
    over = [b for b, x in seen.items() if x > budget and lo < b <= limit]
    if above is not None and lo < above <= limit:
        over.append(above)
    hi = min(over) if over else limit
    if not over and v(limit) <= budget:
        return limit
    bisect_next = False
    while hi - lo > 1:
        width = hi - lo
        check = not bisect_next  # after a secant step (or a guess), its neighbour: the answer when it was right
        guessed = guess is not None
        if guess is not None:
            m, guess = guess, None
        elif bisect_next or hi not in seen:
            m = (lo + hi) // 2
        else:  # the secant through (lo, v(lo)) and (hi, v(hi)), at the budget
            m = lo + (budget - seen[lo]) * (hi - lo) // (seen[hi] - seen[lo])
        m = min(max(m, lo + 1), hi - 1)
        if v(m) <= budget:
            lo = m
            if check and hi - lo > 1:
                if v(m + 1) > budget:
                    return m
                lo = m + 1
        else:
            hi = m
            if check and hi - lo > 1:
                if v(m - 1) <= budget:
                    return m - 1
                hi = m - 1
        bisect_next = not guessed and (hi - lo) * 2 > width  # a poor secant step: bisect next
    return lo
