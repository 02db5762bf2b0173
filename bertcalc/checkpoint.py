"""Reading a safetensors checkpoint's header: names, dtypes and shapes, never the tensor data, never torch.

A ``.safetensors`` file is an 8-byte little-endian header length N, N bytes of JSON mapping each tensor
name to ``{dtype, shape, data_offsets}`` (plus an optional ``__metadata__``), then the raw data. The length is
bounded before anything is read: a header may not be larger than the file, nor than safetensors' own limit.
Sharded checkpoints list their shards in ``model.safetensors.index.json``.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path, PurePosixPath

from . import paths
from .errors import BertcalcError
from .records import frozen

MAX_HEADER = 100_000_000  # bytes: the safetensors format refuses larger headers (MAX_HEADER_SIZE), and so do we
MAX_INDEX = 100_000_000  # bytes of model.safetensors.index.json: a weight_map of a few MB at most
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
_U64 = 1 << 64  # sizes and offsets are unsigned 64-bit integers in the format

# Bits per element of every dtype the safetensors format knows (sub-byte types pack densely).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
DTYPE_BYTES = {k: max(1, v // 8) for k, v in DTYPE_BITS.items()}  # kept for callers: bytes per element


class CheckpointError(BertcalcError):
    """The checkpoint cannot be read: missing, not safetensors, corrupt or truncated."""


@frozen
class StoredTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int  # the span of its data in the file
    file: str  # the shard holding it
    problem: str = ""  # kept for callers; a self-inconsistent header is now an error, never a note
    offsets: tuple[int, int] = (0, 0)  # data_offsets, within the file's data region

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@frozen
class Checkpoint:
    path: str  # what the user named
    files: tuple[str, ...]
    tensors: tuple[StoredTensor, ...]
    metadata: dict[str, str]
    config_path: str | None  # config.json beside it, if any


def locate(path: str | Path) -> tuple[list[Path], Path | None]:
    """The safetensors file(s) a path means, and the config.json beside them (if there is one)."""
    if str(path).strip() == "":
        raise CheckpointError("the checkpoint path is empty; give a model.safetensors file or a model folder")
    p = Path(path)
    what = paths.kind(p, CheckpointError)
    if what is None:
        raise CheckpointError(f"{p}: no such file or folder; give a model.safetensors file or a model folder")
    if what == "other":  # a FIFO with no writer would block the read forever
        raise CheckpointError(f"{p}: not a regular file (a FIFO, device or socket); give a model.safetensors file "
                              "or a model folder")
    if what == "dir":
        folder = p
        if paths.kind(p / INDEX, CheckpointError) == "file":
            files = shards_of(p / INDEX)
        elif paths.kind(p / SINGLE, CheckpointError) == "file":
            files = [p / SINGLE]
        else:
            others = sorted(x.name for x in p.glob("*.safetensors"))
            if len(others) == 1:
                files = [p / others[0]]
            elif others:
                raise CheckpointError(
                    f"{p}: {len(others)} .safetensors files but no {INDEX}; give one file, or the index"
                )
            else:
                bins = [x.name for x in p.glob("*.bin")]
                hint = f" (found {bins[0]}: bertcalc reads safetensors headers only, without torch)" if bins else ""
                raise CheckpointError(f"{p}: no model.safetensors in this folder{hint}")
    elif p.name.endswith(".index.json"):
        folder, files = p.parent, shards_of(p)
    else:
        folder, files = p.parent, [p]
    cfg = folder / "config.json"
    return files, cfg if paths.kind(cfg, CheckpointError) == "file" else None



def weight_map(data: object, where: str) -> dict:
    """An index's ``weight_map`` (tensor name -> shard file), or the error that says what is wrong with it."""
    if not isinstance(data, dict) or "weight_map" not in data:
        raise CheckpointError(f"{where}: no weight_map; a safetensors index maps each tensor to its shard")
    wmap = data["weight_map"]
    if not isinstance(wmap, dict):
        kind = {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false",
                type(None): "null"}.get(type(wmap), type(wmap).__name__)
        raise CheckpointError(f"{where}: weight_map is {kind}; it must map each tensor name to its shard file "
                              '({"bert.embeddings...": "model-00001-of-00002.safetensors", ...})')
    if not wmap:
        raise CheckpointError(f"{where}: weight_map is empty; it must map each tensor name to its shard file")
    return wmap


def _weight_map(index: Path) -> dict[str, str]:
    """The index's ``weight_map`` (tensor name -> shard file), checked: every shard is a file name inside the
    model folder, never an absolute path or one that climbs out of it with ``..``."""
    try:
        with index.open("rb") as fh:
            raw = fh.read(MAX_INDEX + 1)
        if len(raw) > MAX_INDEX:
            raise CheckpointError(f"{index}: larger than {MAX_INDEX:,} bytes; not a safetensors shard index")
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{index}: {paths.problem(exc)}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{index}: cannot read the shard index ({_one_line(exc)}); is it a safetensors "
                              "index?") from None
    wmap = weight_map(data, str(index))
    for name, shard in wmap.items():
        if not isinstance(shard, str) or not shard.strip():
            raise CheckpointError(f"{index}: weight_map[{name!r}] is {json.dumps(shard)}, not a shard file name")
        pure = PurePosixPath(shard.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or ":" in shard or "\0" in shard:
            raise CheckpointError(
                f"{index}: weight_map[{name!r}] names {shard!r}, outside the model folder; shards must lie in "
                f"{index.parent} (a file name such as model-00001-of-00002.safetensors)"
            )
    return wmap


def shards_of(index: Path) -> list[Path]:
    names = sorted(set(_weight_map(index).values()))
    files = [index.parent / n for n in names]
    for f in files:
        if paths.kind(f, CheckpointError) != "file":
            raise CheckpointError(f"{index}: shard {f.name} is listed but missing from {index.parent}")
    return files


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def read_header(file: Path) -> tuple[list[StoredTensor], dict[str, str]]:
    """One file's tensors, from its header alone. Raises :class:`CheckpointError` on anything unreadable."""
    try:
        return _read_header(file)
    except CheckpointError as exc:
        if file.suffix != ".safetensors":  # probably not a safetensors file at all: say that first
            raise CheckpointError(f"{file}: not a safetensors file; give model.safetensors, its folder, or "
                                  "model.safetensors.index.json") from exc
        raise


def _read_header(file: Path) -> tuple[list[StoredTensor], dict[str, str]]:
    if paths.kind(file, CheckpointError) == "other":  # a FIFO with no writer would block the read forever
        raise CheckpointError(f"{file}: not a regular file (a FIFO, device or socket); give a safetensors file")
    try:
        size = file.stat().st_size
        with file.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise CheckpointError(
                    f"{file}: {size} bytes, too short for a safetensors header; the file is truncated"
                )
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise CheckpointError(
                    f"{file}: header claims {n:,} bytes (limit {MAX_HEADER:,}); not a safetensors file, or corrupt"
                )
            if n > size - 8:
                raise CheckpointError(
                    f"{file}: header claims {n:,} bytes but only {size - 8:,} follow; the file is truncated"
                )
            raw = fh.read(n)
    except IsADirectoryError:
        raise CheckpointError(f"{file}: is a directory") from None
    except OSError as exc:
        raise CheckpointError(f"{file}: {paths.problem(exc)}") from None
    corrupt = "the file is corrupt or not safetensors"
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys,
                            parse_constant=_no_constant)
    except _Duplicate as dup:
        raise CheckpointError(f"{file}: {dup.key!r} appears twice in the header (tensor names, and each "
                              f"tensor's fields, must be unique); {corrupt}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError and 4,300-digit ints too
        raise CheckpointError(f"{file}: the header is not valid JSON; {corrupt}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: the header is not a JSON object; {corrupt}")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{file}: __metadata__ must map names to strings; {corrupt}")
    data_len = size - 8 - n
    out = [_tensor(file, name, info, data_len) for name, info in header.items()]
    _check_layout(file, out, data_len)
    out.sort(key=lambda t: t.name)  # headers are written sorted; make sure
    return out, dict(meta)


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json reads them, the format does not


def _size(v: object) -> bool:
    """An unsigned 64-bit integer, as the format stores sizes and offsets (never a bool or a float)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _U64


def _tensor(file: Path, name: str, info: object, data_len: int) -> StoredTensor:
    bad = f"{file}: tensor {name!r}: "
    corrupt = "; the header is corrupt"
    if not isinstance(info, dict):
        raise CheckpointError(bad + "entry is not an object" + corrupt)
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str):
        raise CheckpointError(bad + ("no dtype" if dtype is None else f"dtype {_short(dtype)} is not a dtype name "
                                     "such as F32") + corrupt)
    if dtype not in DTYPE_BITS:
        raise CheckpointError(bad + f"unknown dtype {dtype!r} (safetensors knows {', '.join(DTYPE_BITS)})"
                              + corrupt)
    if not (isinstance(shape, list) and all(_size(s) for s in shape)):
        raise CheckpointError(bad + f"shape {_short(shape)} is not a list of sizes" + corrupt)
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_size(o) for o in offsets)):
        raise CheckpointError(bad + f"data_offsets {_short(offsets)} are not two byte offsets (whole numbers ≥ 0)"
                              + corrupt)
    begin, end = offsets
    if begin > end:
        raise CheckpointError(bad + f"data_offsets {offsets} end before they begin" + corrupt)
    if end > data_len:
        raise CheckpointError(
            bad + f"data ends at byte {end:,} but the file holds {data_len:,}; the file is truncated"
        )
    elements = 1
    for s in shape:
        elements *= s
        if elements >= _U64:
            raise CheckpointError(bad + f"shape {_short(shape)} holds more than 2^64 elements" + corrupt)
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8:
        raise CheckpointError(bad + f"{elements:,} {dtype} elements do not fill whole bytes" + corrupt)
    nbytes = end - begin
    if bits // 8 != nbytes:
        raise CheckpointError(bad + f"data_offsets span {nbytes:,} bytes, but {dtype} {list(shape)} needs "
                              f"{bits // 8:,}" + corrupt)
    return StoredTensor(name, dtype, tuple(shape), nbytes, file.name, offsets=(begin, end))


def _check_layout(file: Path, tensors: list[StoredTensor], data_len: int) -> None:
    """The format's layout rule: in offset order, each tensor's data starts where the previous one's ends,
    from byte 0, and the last ends where the file does. No gap, no overlap, nothing after."""
    spans = sorted((t.offsets, t.name) for t in tensors)
    at = 0
    for (begin, end), name in spans:
        if begin != at:
            what = "overlaps the tensor before it" if begin < at else f"leaves bytes {at:,}-{begin:,} unused"
            raise CheckpointError(f"{file}: tensor {name!r}: data_offsets [{begin}, {end}] {what}; tensors' data "
                                  "must be contiguous from byte 0; the header is corrupt")
        at = end
    if at != data_len:
        raise CheckpointError(f"{file}: the tensors' data covers {at:,} bytes but {data_len:,} follow the header; "
                              "the file is corrupt (or has trailing bytes)")


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read(path: str | Path) -> Checkpoint:
    files, cfg = locate(path)
    tensors: list[StoredTensor] = []
    meta: dict[str, str] = {}
    seen: dict[str, str] = {}
    for f in files:
        ts, m = read_header(f)
        meta.update(m)
        for t in ts:
            if t.name in seen:
                raise CheckpointError(f"{f}: tensor {t.name!r} is also in {seen[t.name]}; the shards overlap")
            seen[t.name] = f.name
        tensors += ts
    index = _index_of(path)
    if index is not None:  # the index must describe the shards it names
        wmap = _weight_map(index)
        for name, shard in wmap.items():
            if seen.get(name) != shard:
                where = f"is in {seen[name]}" if name in seen else "is in no shard"
                raise CheckpointError(f"{index}: weight_map puts {name!r} in {shard}, but it {where}; the index "
                                      "does not match the shards")
        extra = sorted(set(seen) - set(wmap))
        if extra:
            raise CheckpointError(f"{index}: {extra[0]!r} is in {seen[extra[0]]} but not in weight_map "
                                  f"({len(extra)} such); the index does not match the shards")
    return Checkpoint(str(path), tuple(f.name for f in files), tuple(tensors), meta, str(cfg) if cfg else None)


def _index_of(path: str | Path) -> Path | None:
    p = Path(path)
    if paths.kind(p, CheckpointError) == "dir" and paths.kind(p / INDEX, CheckpointError) == "file":
        return p / INDEX
    return p if p.name.endswith(".index.json") else None
