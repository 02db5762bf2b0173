"""PyTorch's CUDA caching allocator, replayed: what ``torch.cuda.max_memory_reserved()`` reports for a step.

A training step fails when the caching allocator cannot get a new segment from the driver, so the OOM
boundary is *reserved* memory: the segments the allocator holds, including freed blocks it cannot hand to the
next request. The rules below are those of ``c10/cuda/CUDACachingAllocator.cpp`` (PyTorch 2.x, as of the
v2.5-v2.11 releases; the constants moved to ``c10/cuda/CUDAAllocatorConfig.h`` and later
``c10/core/AllocatorConfig.h`` without changing), each written beside the code that follows it. The sequence
of requests and frees replayed is memsim's: the same ledger, emitted as an ordered event stream
(:func:`step_events`). Pure: no I/O, no torch.

What is modelled:

- ``round_size``: every request is rounded up to 512 bytes (``kMinBlockSize``), or to the next of
  ``roundup_power2_divisions`` divisions of its power-of-two interval when that option is set.
- two pools per stream: *small* (requests of at most 1 MiB, ``kSmallSize``) and *large*.
- ``get_allocation_size``: a new segment is 2 MiB (``kSmallBuffer``) for a small request, 20 MiB
  (``kLargeBuffer``) for a request under 10 MiB (``kMinLargeAlloc``), else the request rounded up to 2 MiB
  (``kRoundLarge``).
- ``get_free_block``: best fit, the smallest cached block of the pool at least as large as the request (ties:
  the lowest address), with ``max_split_size``'s two refusals: no block of ``max_split_size`` or more for a
  smaller request, and for a request of ``max_split_size`` or more no block ``kLargeBuffer`` (20 MiB) or more
  beyond it.
- ``should_split``: a small block splits when at least 512 bytes would remain; a large one when the request is
  under ``max_split_size`` and more than 1 MiB would remain (with ``expandable_segments``: at least 512 bytes).
- ``free_block``: a freed block merges with its free neighbours in the same segment and goes back to its pool;
  nothing is returned to the driver.
- on a failed ``cudaMalloc`` (the budget is ``capacity``): ``release_available_cached_blocks`` (oversize blocks,
  when ``max_split_size`` is set), then ``release_cached_blocks`` (every cached segment that is one whole free
  block) and one retry; only then out of memory.
- ``expandable_segments``: one segment per pool, mapped in pages of 2 MiB (small pool) or 20 MiB (large pool)
  as it grows; a request no free block fits extends the free block at the segment's end. (Unmapping free
  pages on a failed allocation is not modelled: under ``capacity`` an expandable replay fails when the mapped
  pages would exceed it.)

Not modelled: several streams (one stream: a plain training loop), the garbage-collection threshold (off by
default), CUDA graphs, and the allocator's own per-block record keeping.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from .errors import UsageError, arg

KB = 1024
MB = 1024 * KB

# c10/cuda/CUDACachingAllocator.cpp (CUDAAllocatorConfig.h / AllocatorConfig.h in later releases):
K_MIN_BLOCK_SIZE = 512  # "all sizes are rounded to at least 512 bytes"
K_SMALL_SIZE = 1 * MB  # "largest 'small' allocation is 1 MiB"
K_SMALL_BUFFER = 2 * MB  # "'small' allocations are packed in 2 MiB blocks"
K_LARGE_BUFFER = 20 * MB  # "'large' allocations may be packed in 20 MiB blocks"
K_MIN_LARGE_ALLOC = 10 * MB  # "allocations between 1 and 10 MiB may use kLargeBuffer"
K_ROUND_LARGE = 2 * MB  # "round up large allocations to 2 MiB"
NO_MAX_SPLIT = 1 << 64  # max_split_size unset: std::numeric_limits<size_t>::max()


class OutOfMemory(Exception):
    """The replay could not reserve a segment within ``capacity`` even after releasing cached ones."""


@dataclass(frozen=True)
class AllocatorConfig:
    """``PYTORCH_CUDA_ALLOC_CONF``'s options that change reserved memory. ``capacity``: the bytes the driver
    can hand out (the card's total less the CUDA context); ``None``: unbounded."""

    max_split_size: int | None = None  # bytes (max_split_size_mb · 2^20); None: unset
    expandable_segments: bool = False
    roundup_power2_divisions: int = 0  # 0 or 1: off; else a power of two
    capacity: int | None = None
    max_non_split_rounding_size: int = K_LARGE_BUFFER  # how much bigger an oversize block may be (PyTorch ≥ 2.8)

    def __post_init__(self) -> None:
        if self.max_split_size is not None and self.max_split_size <= K_LARGE_BUFFER:
            # CUDAAllocatorConfig::parseMaxSplitSize:
            # "CachingAllocator option max_split_size_mb too small, must be > 20"
            raise UsageError("max_split_size_mb must be more than 20 (PyTorch refuses smaller)",
                             param="alloc_conf")
        d = self.roundup_power2_divisions
        if d < 0 or (d > 1 and d & (d - 1)):
            raise UsageError("roundup_power2_divisions must be a power of two", param="alloc_conf")

    @property
    def max_split(self) -> int:
        return NO_MAX_SPLIT if self.max_split_size is None else self.max_split_size


def parse_alloc_conf(text: str) -> AllocatorConfig:
    """``PYTORCH_CUDA_ALLOC_CONF``'s syntax: ``expandable_segments:True,max_split_size_mb:128,
    roundup_power2_divisions:4`` (the options that change reserved memory; others are refused)."""
    fields: dict[str, Any] = {}
    for item in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = item.partition(":")
        key, value = key.strip(), value.strip()
        try:
            if not sep:
                raise ValueError
            if key == "expandable_segments" and value in ("True", "False"):
                fields["expandable_segments"] = value == "True"
            elif key == "max_split_size_mb":
                fields["max_split_size"] = int(value) * MB
            elif key == "roundup_power2_divisions":
                fields["roundup_power2_divisions"] = int(value)
            else:
                raise ValueError
        except ValueError:
            raise UsageError(f"{arg('alloc_conf', repr(item))}: give expandable_segments:True|False, "
                             "max_split_size_mb:N or roundup_power2_divisions:N, comma-separated",
                             param="alloc_conf") from None
    return AllocatorConfig(**fields)


def round_size(size: int, divisions: int = 0) -> int:
    """``DeviceCachingAllocator::round_size``."""
    if size < K_MIN_BLOCK_SIZE:
        return K_MIN_BLOCK_SIZE
    if divisions > 1 and size > K_MIN_BLOCK_SIZE * divisions:
        return _roundup_power2_next_division(size, divisions)
    return K_MIN_BLOCK_SIZE * -(-size // K_MIN_BLOCK_SIZE)


def _roundup_power2_next_division(size: int, divisions: int) -> int:
    """``roundup_power2_next_division``: the interval [2^k, 2^(k+1)) split into ``divisions`` equal steps."""
    if size & (size - 1) == 0:
        return size
    floor = 1 << (size.bit_length() - 1)
    step = floor >> (divisions.bit_length() - 1)  # power2_floor >> log2(divisions)
    if step == 0:
        return floor << 1
    down = size & ~(step - 1)
    return size if down == size else down + step


def allocation_size(size: int) -> int:
    """``get_allocation_size``: the segment a request that no cached block fits gets from ``cudaMalloc``."""
    if size <= K_SMALL_SIZE:
        return K_SMALL_BUFFER
    if size < K_MIN_LARGE_ALLOC:
        return K_LARGE_BUFFER
    return K_ROUND_LARGE * -(-size // K_ROUND_LARGE)


class _Block:
    __slots__ = ("addr", "free", "next", "prev", "seg", "size", "small")

    def __init__(self, addr: int, size: int, small: bool, seg: int) -> None:
        self.addr, self.size, self.small, self.seg = addr, size, small, seg
        self.free = True
        self.prev: _Block | None = None
        self.next: _Block | None = None


class Allocator:
    """One device, one stream. ``malloc(key, nbytes)`` / ``free(key)``; ``reserved``, ``allocated`` and their
    peaks as ``torch.cuda.memory_reserved()``, ``memory_allocated()`` and the ``max_`` variants count them."""

    def __init__(self, config: AllocatorConfig | None = None) -> None:
        self.cfg = config or AllocatorConfig()
        self.pools: dict[bool, list[tuple[int, int]]] = {True: [], False: []}  # (size, addr), sorted: best fit
        self.by_addr: dict[int, _Block] = {}  # free blocks in a pool, by address
        self.live: dict[Any, _Block] = {}
        self.reserved = self.peak_reserved = 0
        self.allocated = self.peak_allocated = 0
        self.segments: dict[int, int] = {}  # segment id -> its reserved bytes
        self._next_addr = 0
        self._tail: dict[bool, _Block | None] = {True: None, False: None}  # expandable: each pool's last block
        self.retries = 0
        self._plain = self.cfg.roundup_power2_divisions <= 1
        self._ms = self.cfg.max_split

    # ------------------------------------------------------------------------------------------ pools

    def _insert(self, b: _Block) -> None:
        b.free = True
        bisect.insort(self.pools[b.small], (b.size, b.addr))
        self.by_addr[b.addr] = b

    def _remove(self, b: _Block) -> None:
        pool = self.pools[b.small]
        i = bisect.bisect_left(pool, (b.size, b.addr))
        del pool[i]
        del self.by_addr[b.addr]

    def _get_free_block(self, size: int, small: bool) -> _Block | None:
        """``get_free_block``: ``pool.blocks.lower_bound(&search_key)``, the smallest block of at least ``size``
        (ties by address), unless ``max_split_size`` forbids it."""
        pool = self.pools[small]
        i = bisect.bisect_left(pool, (size, -1))
        if i == len(pool):
            return None
        bsize, addr = pool[i]
        ms = self._ms
        if size < ms and bsize >= ms:  # "Do not return an oversized block for a small request"
            return None
        # "Allow oversized block size to be rounded up but within a limit": kLargeBuffer, or from PyTorch 2.8 on
        # max_non_split_rounding_size (default kLargeBuffer)
        if size >= ms and bsize >= size + self.cfg.max_non_split_rounding_size:
            return None
        del pool[i]  # _remove, with the index already found
        return self.by_addr.pop(addr)

    def _should_split(self, b: _Block, size: int) -> bool:
        """``should_split``."""
        remaining = b.size - size
        if b.small or self.cfg.expandable_segments:
            return remaining >= K_MIN_BLOCK_SIZE
        return size < self._ms and remaining > K_SMALL_SIZE

    # -------------------------------------------------------------------------------------- segments

    def _cuda_malloc(self, nbytes: int) -> bool:
        cap = self.cfg.capacity
        if cap is not None and self.reserved + nbytes > cap:
            return False
        self.reserved += nbytes
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        return True

    def _alloc_block(self, size: int, small: bool) -> _Block | None:
        """``alloc_block``: a new segment of ``get_allocation_size`` bytes, one free block."""
        if self.cfg.expandable_segments:
            return self._expand(size, small)
        seg_size = allocation_size(size)
        if not self._cuda_malloc(seg_size):
            return None
        seg = self._next_addr
        b = _Block(seg, seg_size, small, seg)
        self._next_addr += seg_size + K_ROUND_LARGE  # segments never touch: blocks merge only within one
        self.segments[seg] = seg_size
        return b

    def _expand(self, size: int, small: bool) -> _Block | None:
        """``try_allocate_expandable_block``: map pages at the end of the pool's segment (2 MiB pages for the
        small pool, 20 MiB for the large one: the ExpandableSegment's ``segment_size``), merged with the free
        block already there."""
        page = K_SMALL_BUFFER if small else K_LARGE_BUFFER
        tail = self._tail[small]
        have = tail.size if tail is not None and tail.free else 0
        grow = page * -(-(size - have) // page)
        if not self._cuda_malloc(grow):
            return None
        seg = -1 if small else -2
        self.segments[seg] = self.segments.get(seg, 0) + grow
        if have:
            assert tail is not None
            self._remove(tail)
            tail.size += grow
            return tail
        addr = (tail.addr + tail.size) if tail is not None else (0 if small else 1 << 62)
        b = _Block(addr, grow, small, seg)
        b.prev = tail
        if tail is not None:
            tail.next = b
        self._tail[small] = b
        return b

    def _release_cached(self, size: int, small: bool) -> bool:
        """``release_available_cached_blocks`` (oversize blocks, with ``max_split_size``) and, failing that,
        ``release_cached_blocks``: ``cudaFree`` every cached segment that is a single free block."""
        if self.cfg.expandable_segments:
            return False
        freed = False
        for pool_small in (True, False):
            for bsize, addr in list(self.pools[pool_small]):
                b = self.by_addr[addr]
                if b.prev is None and b.next is None:
                    self._remove(b)
                    self.reserved -= bsize
                    del self.segments[b.seg]
                    freed = True
        return freed

    def _new_block(self, size: int, small: bool, nbytes: int) -> _Block:
        """No cached block fits: a new segment; failing that, release the cached ones and retry once (the
        allocator's release-and-retry); failing that, out of memory."""
        b = self._alloc_block(size, small)
        if b is None:
            self.retries += 1
            if self._release_cached(size, small):
                b = self._alloc_block(size, small)
        if b is None:
            raise OutOfMemory(f"cannot reserve a segment for {nbytes} bytes")
        return b

    # ------------------------------------------------------------------------------------ the interface

    def malloc(self, key: Any, nbytes: int) -> None:
        if self._plain:  # round_size without roundup_power2_divisions, inline: the replay's hot path
            size = K_MIN_BLOCK_SIZE if nbytes < K_MIN_BLOCK_SIZE else -(-nbytes // K_MIN_BLOCK_SIZE) * K_MIN_BLOCK_SIZE
        else:
            size = round_size(nbytes, self.cfg.roundup_power2_divisions)
        small = size <= K_SMALL_SIZE  # get_pool
        b = self._get_free_block(size, small)
        if b is None:
            b = self._new_block(size, small, nbytes)
        if self._should_split(b, size):  # alloc_found_block: the front is handed out, the rest stays cached
            rest = _Block(b.addr + size, b.size - size, small, b.seg)
            rest.prev, rest.next = b, b.next
            if b.next is not None:
                b.next.prev = rest
            b.next = rest
            b.size = size
            if self._tail[small] is b:
                self._tail[small] = rest
            self._insert(rest)
        b.free = False
        self.live[key] = b
        self.allocated += b.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)

    def free(self, key: Any) -> None:
        """``free_block``: merge with free neighbours (``try_merge_blocks``), back into the pool."""
        b = self.live.pop(key)
        self.allocated -= b.size
        for other in (b.prev, b.next):
            if other is not None and other.free:
                self._remove(other)
                if other is b.prev:
                    other.size += b.size
                    other.next = b.next
                    if b.next is not None:
                        b.next.prev = other
                    if self._tail[b.small] is b:
                        self._tail[b.small] = other
                    b = other
                else:
                    b.size += other.size
                    b.next = other.next
                    if other.next is not None:
                        other.next.prev = b
                    if self._tail[b.small] is other:
                        self._tail[b.small] = b
        self._insert(b)


Event = tuple  # ("+", key, nbytes) or ("-", key)


def replay(events: list[Event], config: AllocatorConfig | None = None) -> Allocator:
    """Run ``events`` through a fresh allocator; raises :class:`OutOfMemory` when ``config.capacity`` is hit."""
    a = Allocator(config)
    if a._plain and not a.cfg.expandable_segments:
        _replay_plain(a, events)
        return a
    malloc, free = a.malloc, a.free
    for ev in events:
        if ev[0] == "+":
            malloc(ev[1], ev[2])
        else:
            free(ev[1])
    return a


def _replay_plain(a: Allocator, events: list[Event]) -> None:
    """:meth:`Allocator.malloc` and :meth:`Allocator.free` inlined into one loop, for the configuration every
    replay but an option's uses (no ``roundup_power2_divisions``, no ``expandable_segments``: so no pool has a
    tail block to track). The same rules in the same order, step for step (``tests/test_allocator.py`` runs
    both on the same streams); only the calls between them are gone, which is most of the replay's time."""
    pools, by_addr, live = a.pools, a.by_addr, a.live
    small_pool, large_pool = pools[True], pools[False]
    ms, rounding = a._ms, a.cfg.max_non_split_rounding_size
    bisect_left, insort = bisect.bisect_left, bisect.insort
    allocated, peak = a.allocated, a.peak_allocated
    MIN = K_MIN_BLOCK_SIZE
    try:
        for ev in events:
            if ev[0] == "+":
                nbytes = ev[2]
                size = MIN if nbytes < MIN else -(-nbytes // MIN) * MIN  # round_size
                small = size <= K_SMALL_SIZE
                pool = small_pool if small else large_pool
                # get_free_block
                b = None
                i = bisect_left(pool, (size, -1))
                if i != len(pool):
                    bsize, addr = pool[i]
                    if not ((size < ms and bsize >= ms) or (size >= ms and bsize >= size + rounding)):
                        del pool[i]
                        b = by_addr.pop(addr)
                if b is None:
                    a.allocated, a.peak_allocated = allocated, peak
                    b = a._new_block(size, small, nbytes)
                # should_split, then alloc_found_block
                remaining = b.size - size
                if (remaining >= K_MIN_BLOCK_SIZE) if small else (size < ms and remaining > K_SMALL_SIZE):
                    rest = _Block(b.addr + size, remaining, small, b.seg)
                    nxt = b.next
                    rest.prev, rest.next = b, nxt
                    if nxt is not None:
                        nxt.prev = rest
                    b.next = rest
                    b.size = size
                    insort(pool, (remaining, rest.addr))  # _insert(rest); a new block is free
                    by_addr[rest.addr] = rest
                b.free = False
                live[ev[1]] = b
                allocated += b.size
                if allocated > peak:
                    peak = allocated
            else:
                # free_block: merge with the free neighbours, back into the pool
                b = live.pop(ev[1])
                allocated -= b.size
                pool = small_pool if b.small else large_pool
                prev, nxt = b.prev, b.next
                if prev is not None and prev.free:
                    del pool[bisect_left(pool, (prev.size, prev.addr))]  # _remove(prev)
                    del by_addr[prev.addr]
                    prev.size += b.size
                    prev.next = nxt
                    if nxt is not None:
                        nxt.prev = prev
                    b = prev
                if nxt is not None and nxt.free:
                    del pool[bisect_left(pool, (nxt.size, nxt.addr))]  # _remove(nxt)
                    del by_addr[nxt.addr]
                    b.size += nxt.size
                    b.next = nxt.next
                    if nxt.next is not None:
                        nxt.next.prev = b
                b.free = True
                insort(pool, (b.size, b.addr))  # _insert(b)
                by_addr[b.addr] = b
    finally:
        a.allocated, a.peak_allocated = allocated, peak
