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
from dataclasses import dataclass
from pathlib import Path

from .errors import BertcalcError

MAX_HEADER = 100 * 1024 * 1024  # the safetensors format refuses larger headers too
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F6_E2M3": 1, "F6_E3M2": 1, "F4": 1,
}


class CheckpointError(BertcalcError):
    """The checkpoint cannot be read: missing, not safetensors, corrupt or truncated."""


@dataclass(frozen=True)
class StoredTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int  # the span of its data in the file
    file: str  # the shard holding it
    problem: str = ""  # the header is self-inconsistent for this tensor (size vs shape), but readable

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Checkpoint:
    path: str  # what the user named
    files: tuple[str, ...]
    tensors: tuple[StoredTensor, ...]
    metadata: dict[str, str]
    config_path: str | None  # config.json beside it, if any


def locate(path: str | Path) -> tuple[list[Path], Path | None]:
    """The safetensors file(s) a path means, and the config.json beside them (if there is one)."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or folder; give a model.safetensors file or a model folder")
    if p.is_dir():
        folder = p
        if (p / INDEX).is_file():
            files = shards_of(p / INDEX)
        elif (p / SINGLE).is_file():
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
    return files, cfg if cfg.is_file() else None


def shards_of(index: Path) -> list[Path]:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{index}: cannot read the shard index ({exc}); is it a safetensors index?") from None
    wmap = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(wmap, dict) or not wmap:
        raise CheckpointError(f"{index}: no weight_map; a safetensors index maps each tensor to its shard")
    names = sorted(set(map(str, wmap.values())))
    files = [index.parent / n for n in names]
    for f in files:
        if not f.is_file():
            raise CheckpointError(f"{index}: shard {f.name} is listed but missing from {index.parent}")
    return files


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
    except PermissionError:
        raise CheckpointError(f"{file}: permission denied; make the file readable") from None
    except IsADirectoryError:
        raise CheckpointError(f"{file}: is a directory") from None
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read ({exc.strerror or exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{file}: the header is not valid JSON; the file is corrupt or not safetensors") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: the header is not a JSON object; the file is corrupt or not safetensors")
    meta = header.pop("__metadata__", None) or {}
    data_len = size - 8 - n
    out = []
    for name, info in header.items():
        out.append(_tensor(file, name, info, data_len))
    out.sort(key=lambda t: t.name)  # headers are written sorted; make sure
    return out, {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _tensor(file: Path, name: str, info: object, data_len: int) -> StoredTensor:
    bad = f"{file}: tensor {name!r}: "
    if not isinstance(info, dict):
        raise CheckpointError(bad + "entry is not an object; the header is corrupt")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str):
        raise CheckpointError(bad + "no dtype; the header is corrupt")
    if not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise CheckpointError(bad + f"shape {shape!r} is not a list of sizes; the header is corrupt")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise CheckpointError(bad + f"data_offsets {offsets!r} are invalid; the header is corrupt")
    if offsets[1] > data_len:
        raise CheckpointError(
            bad + f"data ends at byte {offsets[1]:,} but the file holds {data_len:,}; the file is truncated"
        )
    nbytes = offsets[1] - offsets[0]
    problem = ""
    width = DTYPE_BYTES.get(dtype)
    if width is not None and math.prod(shape) * width != nbytes:
        problem = f"header says {nbytes:,} bytes of data, but {dtype} {list(shape)} needs {math.prod(shape) * width:,}"
    return StoredTensor(name, dtype, tuple(shape), nbytes, file.name, problem)


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
        wmap = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
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
    if p.is_dir() and (p / INDEX).is_file():
        return p / INDEX
    return p if p.name.endswith(".index.json") else None
