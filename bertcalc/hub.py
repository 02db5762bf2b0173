"""Models on the Hugging Face Hub: a model id, resolved from the local HF cache or the Hub, never the weights.

How a name is read (:func:`classify`), in this order:

1. a shipped preset name (``base``, ``roberta-base``): the preset wins;
2. a path that exists (a file or a folder): the local path wins over an id of the same spelling;
3. something that looks like a path (starts with ``/``, ``./``, ``../`` or ``~``, holds a ``\\`` or more than one
   ``/``, or ends in ``.json``, ``.yaml``, ``.yml`` or ``.safetensors``): a local path, reported missing;
4. ``org/name`` (one ``/``): a Hub model id, checked by huggingface_hub's rules;
5. a bare ``name``: a preset, reported unknown with a did-you-mean. The Hub's old ids without an org
   (``bert-base-uncased``) are written in full (``google-bert/bert-base-uncased``).

A config is resolved from the local cache first (``HF_HOME``, ``HF_HUB_CACHE``; ``revision`` picks a branch, tag
or commit); only when it is not cached is ``config.json`` downloaded, alone, with ``hf_hub_download``, into the
same cache. ``HF_HUB_OFFLINE=1`` or ``offline=True`` means the cache only. The token is huggingface_hub's:
``HF_TOKEN``, else the file ``hf auth login`` writes.

A checkpoint is read from its safetensors headers alone: from the cached files when the snapshot holds them,
else with HTTP range requests through huggingface_hub's session (two per file: the 8-byte length, then exactly
the header), so no byte of tensor data is fetched. :class:`Transfer` counts what was read.

Every failure is a :class:`HubError` (exit code 2) whose one-line message names the id and says what to do.
huggingface_hub is imported here only, and only when a Hub id is used: never on the path of a preset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BertcalcError, arg
from .records import frozen

CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
MAX_CONFIG_BYTES = 1 << 20  # as loading.py: a config is a few KiB
MAX_INDEX_BYTES = 16 << 20  # an index of thousands of tensors is a few hundred KiB
MAX_ID_LENGTH = 96  # huggingface_hub's limit
_PATH_SUFFIXES = (".json", ".yaml", ".yml", ".safetensors")
_ID_PART = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


class HubError(BertcalcError):
    """A Hub model id that cannot be resolved: malformed, unknown, gated, offline, or the Hub unreachable."""


# --------------------------------------------------------------------------------------------- ids and names


def looks_like_path(text: str) -> bool:
    return (text.startswith(("/", "./", "../", "~")) or "\\" in text or text.count("/") > 1
            or text.lower().endswith(_PATH_SUFFIXES) or text in (".", ".."))


def check_id(repo_id: str) -> str:
    """``repo_id`` if it is a well-formed Hub model id (``org/name`` or ``name``), else :class:`HubError`.

    The rules are huggingface_hub's: letters, digits, ``-``, ``_`` and ``.``, at most one ``/``, neither ``--`` nor
    ``..``, each part starting and ending with a letter, digit or ``_``, at most 96 characters.
    """
    fix = "a Hub model id is 'org/name' (letters, digits, '-', '_', '.'), e.g. google-bert/bert-base-uncased"
    where = f"model id {repo_id!r}"
    if not repo_id:
        raise HubError(f"empty model id; {fix}")
    if ".." in repo_id or "--" in repo_id:
        raise HubError(f"{where}: '..' and '--' are not allowed in a Hub id; {fix}")
    if len(repo_id) > MAX_ID_LENGTH:
        raise HubError(f"{where}: longer than {MAX_ID_LENGTH} characters; {fix}")
    parts = repo_id.split("/")
    if len(parts) > 2:
        raise HubError(f"{where}: more than one '/'; {fix}")
    for part in parts:
        if not _ID_PART.match(part):
            bad = next((c for c in part if not (c.isascii() and (c.isalnum() or c in "_.-"))), None)
            why = f"character {bad!r} is not allowed" if bad else ("an empty part" if not part else
                                                                  f"{part!r} starts or ends with '.' or '-'")
            raise HubError(f"{where}: {why}; {fix}")
    if repo_id.endswith(".git"):
        raise HubError(f"{where}: ends with '.git'; {fix}")
    return repo_id


def classify(text: str) -> tuple[str, str]:
    """``("preset" | "path" | "hub", text)``: what a model name means (see the module docstring)."""
    from . import catalog

    if text in catalog.names():
        return "preset", text
    if Path(text).expanduser().exists() or looks_like_path(text):
        return "path", text
    if "/" in text:
        return "hub", check_id(text)
    return "preset", text  # not a shipped preset: resolving it says so, with a did-you-mean


# ------------------------------------------------------------------------------------------------- results


@dataclass
class Transfer:
    """What was read from the Hub: one entry per request with a body (HEAD requests carry none)."""

    reads: list[tuple[str, str, int]] = field(default_factory=list)  # (file, what, bytes)

    def add(self, file: str, what: str, n: int) -> None:
        self.reads.append((file, what, n))

    @property
    def bytes(self) -> int:
        return sum(n for _, _, n in self.reads)

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "requests": [{"file": f, "what": w, "bytes": n} for f, w, n in self.reads]}


@frozen
class HubConfig:
    """A resolved ``config.json``: where it lies in the cache, and how it got there."""

    repo_id: str
    revision: str | None  # as asked (None: the default branch)
    commit: str  # the snapshot it belongs to
    path: Path  # in the cache's snapshots/<commit>/
    from_cache: bool  # True: no request was made
    endpoint: str

    @property
    def label(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


# ---------------------------------------------------------------------------------------- huggingface_hub


def _hf() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise HubError("reading a model from the Hugging Face Hub needs huggingface_hub: "
                       "pip install 'bertcalc[hub]'") from None
    return huggingface_hub


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """huggingface_hub logs retries and warnings on stderr; every outcome here becomes one error line instead."""
    import logging

    log = logging.getLogger("huggingface_hub")
    before = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(before)


def _offline(offline: bool | None) -> bool:
    from huggingface_hub import constants

    return bool(offline) or constants.is_offline_mode()


def _timeouts() -> tuple[float, float]:
    """(metadata, download) timeouts in seconds: HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (default 10)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT), float(constants.HF_HUB_DOWNLOAD_TIMEOUT)


def _http_errors() -> tuple[type[BaseException], type[BaseException]]:
    """(timeout, transport) exception classes of the HTTP library huggingface_hub uses."""
    try:
        import httpx2 as http
    except ImportError:  # pragma: no cover - huggingface_hub 1.x used httpx
        import httpx as http  # type: ignore[no-redef]
    return http.TimeoutException, http.TransportError


def _explain(exc: BaseException, repo_id: str, revision: str | None, file: str, endpoint: str) -> HubError:
    """One line for any failure of a Hub request: what happened to which id, and what to do."""
    from huggingface_hub import errors as e

    rev = f" at revision {revision!r}" if revision else ""
    page = f"{endpoint}/{repo_id}"
    timeout, transport = _http_errors()
    if isinstance(exc, e.GatedRepoError):
        status = getattr(getattr(exc, "response", None), "status_code", 401)
        if status == 403:
            return HubError(f"{repo_id}: gated model, and your token has no access to it (403); accept its terms at "
                            f"{page} with the account of your token")
        return HubError(f"{repo_id}: gated model, and no token was sent (401); accept its terms at {page}, then log "
                        "in with 'hf auth login' or set HF_TOKEN")
    if isinstance(exc, e.RevisionNotFoundError):
        return HubError(f"{repo_id}: no revision {revision!r} on the Hub; give {arg('revision')} a branch, tag or "
                        "commit that exists")
    if isinstance(exc, e.RepositoryNotFoundError):
        status = getattr(getattr(exc, "response", None), "status_code", 404)
        return HubError(f"{repo_id}: no such model on the Hub ({status}), and no such local path; check the id, or "
                        "if the model is private, log in with 'hf auth login' or set HF_TOKEN")
    if isinstance(exc, e.RemoteEntryNotFoundError):
        return HubError(f"{repo_id}: the repo has no {file}{rev}; is it a transformers model?")
    if isinstance(exc, e.OfflineModeIsEnabled | e.LocalEntryNotFoundError):
        return _not_cached(repo_id, revision, file)
    if isinstance(exc, e.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 403:
            return HubError(f"{repo_id}: access denied (403) to {file}; check that your token (HF_TOKEN or 'hf auth "
                            "login') may read this repo")
        if status == 401:
            return HubError(f"{repo_id}: the Hub refused the token (401); log in again with 'hf auth login' or fix "
                            "HF_TOKEN")
        return HubError(f"{repo_id}: the Hub answered HTTP {status} for {file}; try again later, or use "
                        f"{arg('offline')} for a cached model")
    if isinstance(exc, timeout):
        return HubError(f"{repo_id}: the Hub ({endpoint}) did not answer within the timeout while reading {file}; "
                        "check the connection or raise HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT, or use "
                        f"{arg('offline')} for a cached model")
    if isinstance(exc, transport | OSError):
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return HubError(f"{repo_id}: cannot reach the Hub at {endpoint} ({why}); check the connection or "
                        f"HF_ENDPOINT, or use {arg('offline')} for a cached model")
    return HubError(f"{repo_id}: reading {file} from the Hub failed ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); try again, or use {arg('offline')} for a cached "
                    "model")


def _not_cached(repo_id: str, revision: str | None, file: str) -> HubError:
    from huggingface_hub import constants

    rev = f" at revision {revision!r}" if revision else ""
    return HubError(f"{repo_id}: {file}{rev} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and "
                    f"offline mode is on ({arg('offline')} or HF_HUB_OFFLINE=1); run once online, or set HF_HUB_CACHE "
                    "to the cache that holds it")


@contextlib.contextmanager
def _hub_call(repo_id: str, revision: str | None, file: str, endpoint: str) -> Iterator[None]:
    """Turn any exception of a Hub request into :class:`HubError`."""
    try:
        with _quiet():
            yield
    except HubError:
        raise
    except BertcalcError:
        raise
    except Exception as exc:
        raise _explain(exc, repo_id, revision, file, endpoint) from None


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _head(repo_id: str, filename: str, revision: str | None, timeout: float) -> Any:
    """HEAD one file (no retries, our timeout): its size, commit and final location; HF's typed errors."""
    hf = _hf()
    url = hf.hf_hub_url(repo_id, filename, revision=revision)
    return hf.get_hf_file_metadata(url, timeout=timeout, retry_on_errors=False)


# ------------------------------------------------------------------------------------------------- configs


def fetch_config(repo_id: str, revision: str | None = None, offline: bool | None = None,
                 transfer: Transfer | None = None) -> HubConfig:
    """``config.json`` of a Hub model: from the cache if it holds it, else downloaded alone into the cache."""
    check_id(repo_id)
    hf = _hf()
    endpoint = _endpoint()
    with _hub_call(repo_id, revision, CONFIG, endpoint):
        cached = hf.try_to_load_from_cache(repo_id, CONFIG, revision=revision)
        if isinstance(cached, str):
            return HubConfig(repo_id, revision, Path(cached).parent.name, Path(cached), True, endpoint)
        if _offline(offline):
            raise _not_cached(repo_id, revision, CONFIG)
        etag_timeout, _ = _timeouts()
        meta = _head(repo_id, CONFIG, revision, etag_timeout)  # bounded, no retries: a stall fails fast
        if meta.size is not None and meta.size > MAX_CONFIG_BYTES:
            raise HubError(f"{repo_id}: its config.json is {meta.size:,} bytes (limit {MAX_CONFIG_BYTES:,}); that is "
                           "not a model config")
        from huggingface_hub.utils import silent_tqdm

        path = hf.hf_hub_download(repo_id, CONFIG, revision=revision, etag_timeout=etag_timeout,
                                  tqdm_class=silent_tqdm)
    size = Path(path).stat().st_size
    if transfer is not None:
        transfer.add(CONFIG, "download", size)
    return HubConfig(repo_id, revision, Path(path).parent.name, Path(path), False, endpoint)


def load_source(repo_id: str, revision: str | None = None, offline: bool | None = None) -> Any:
    """A :class:`loading.Source` for a Hub model's config.json, read leniently as any HF config is."""
    from .errors import ConfigFileError
    from .loading import hf_source, read_mapping

    cfg = fetch_config(repo_id, revision, offline)
    origin = f"{cfg.label} (config.json)"
    try:
        data = read_mapping(cfg.path)
    except ConfigFileError as exc:
        raise ConfigFileError(exc.text.replace(str(cfg.path), origin)) from None
    return hf_source(data, origin)


def declared_bytes(config_path: str | Path | None) -> dict[str, Any]:
    """The fields of an HF config that change bytes but not shapes: its dtype and quantization_config."""
    if config_path is None or Path(config_path).suffix.lower() != ".json":
        return {}
    from .errors import ConfigFileError
    from .loading import read_mapping

    try:
        data = read_mapping(config_path)
    except ConfigFileError:
        return {}
    out: dict[str, Any] = {}
    dtype = data.get("dtype", data.get("torch_dtype"))  # transformers 5 writes dtype, older ones torch_dtype
    if isinstance(dtype, str):
        out["dtype"] = dtype
    quant = data.get("quantization_config")
    if isinstance(quant, dict):
        out["quantization_config"] = quant
    return out


# ------------------------------------------------------------------------------------------ remote headers


def read_checkpoint(repo_id: str, revision: str | None = None, offline: bool | None = None,
                    transfer: Transfer | None = None) -> tuple[Any, HubConfig]:
    """A Hub model's safetensors headers (a :class:`checkpoint.Checkpoint`) and its config.json.

    From the cached files when the snapshot holds them; else with range requests for the headers alone, pinned to
    the commit of the config.
    """
    from . import checkpoint

    transfer = transfer if transfer is not None else Transfer()
    cfg = fetch_config(repo_id, revision, offline, transfer)
    snapshot = cfg.path.parent
    if (snapshot / INDEX).is_file() or (snapshot / SINGLE).is_file():
        try:
            local = checkpoint.read(snapshot)
        except checkpoint.CheckpointError as exc:
            if not _offline(offline) and "missing" in exc.message:  # shards not all cached: read them remotely
                local = None
            else:
                raise checkpoint.CheckpointError(exc.text.replace(str(snapshot), cfg.label)) from None
        if local is not None:
            return checkpoint.Checkpoint(cfg.label, local.files, local.tensors, local.metadata, str(cfg.path)), cfg
    if _offline(offline):
        raise _not_cached(repo_id, revision, "the safetensors checkpoint (model.safetensors or its index)")
    return _remote(cfg, transfer), cfg


def _remote(cfg: HubConfig, transfer: Transfer) -> Any:
    from . import checkpoint

    hf = _hf()
    from huggingface_hub import errors as hf_errors

    etag_timeout, timeout = _timeouts()
    rev = cfg.commit  # every file from the same commit as the config
    with _hub_call(cfg.repo_id, cfg.revision, SINGLE, cfg.endpoint):
        try:
            metas = {SINGLE: _head(cfg.repo_id, SINGLE, rev, etag_timeout)}
            index = None
        except hf_errors.RemoteEntryNotFoundError:
            metas, index = {}, None
    if not metas:
        with _hub_call(cfg.repo_id, cfg.revision, INDEX, cfg.endpoint):
            try:
                meta = _head(cfg.repo_id, INDEX, rev, etag_timeout)
            except hf_errors.RemoteEntryNotFoundError:
                raise HubError(f"{cfg.label}: the repo has neither {SINGLE} nor {INDEX}; bertcalc reads safetensors "
                               "headers only (a pytorch_model.bin needs torch)") from None
            if meta.size is not None and meta.size > MAX_INDEX_BYTES:
                raise HubError(f"{cfg.label}: {INDEX} is {meta.size:,} bytes (limit {MAX_INDEX_BYTES:,}); not a "
                               "safetensors index")
            from huggingface_hub.utils import silent_tqdm

            path = hf.hf_hub_download(cfg.repo_id, INDEX, revision=rev, etag_timeout=etag_timeout,
                                      tqdm_class=silent_tqdm)
        transfer.add(INDEX, "download", Path(path).stat().st_size)
        index = _weight_map(cfg.label, Path(path))
        for shard in sorted(set(index.values())):
            if "/" in shard or "\\" in shard or shard in (".", "..") or not shard.endswith(".safetensors"):
                raise checkpoint.CheckpointError(f"{cfg.label}/{INDEX}: shard name {shard!r} is not a safetensors "
                                                 "file in the repo; the index is corrupt")
            with _hub_call(cfg.repo_id, cfg.revision, shard, cfg.endpoint):
                try:
                    metas[shard] = _head(cfg.repo_id, shard, rev, etag_timeout)
                except hf_errors.RemoteEntryNotFoundError:
                    raise checkpoint.CheckpointError(f"{cfg.label}/{INDEX}: shard {shard} is listed but missing from "
                                                     "the repo") from None
    tensors: list[Any] = []
    meta_out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, meta in metas.items():
        with _hub_call(cfg.repo_id, cfg.revision, name, cfg.endpoint):
            ts, m = _remote_header(cfg, name, meta, timeout, transfer)
        meta_out.update(m)
        for t in ts:
            if t.name in seen:
                raise checkpoint.CheckpointError(f"{cfg.label}/{name}: tensor {t.name!r} is also in {seen[t.name]}; "
                                                 "the shards overlap")
            seen[t.name] = name
        tensors += ts
    if index is not None:
        for tname, shard in index.items():
            if seen.get(tname) != shard:
                where = f"is in {seen[tname]}" if tname in seen else "is in no shard"
                raise checkpoint.CheckpointError(f"{cfg.label}/{INDEX}: weight_map puts {tname!r} in {shard}, but it "
                                                 f"{where}; the index does not match the shards")
        extra = sorted(set(seen) - set(index))
        if extra:
            raise checkpoint.CheckpointError(f"{cfg.label}/{INDEX}: {extra[0]!r} is in {seen[extra[0]]} but not in "
                                             f"weight_map ({len(extra)} such); the index does not match the shards")
    return checkpoint.Checkpoint(cfg.label, tuple(metas), tuple(tensors), meta_out, str(cfg.path))


def _weight_map(label: str, path: Path) -> dict[str, str]:
    from .checkpoint import CheckpointError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{label}/{INDEX}: not valid JSON; the shard index is corrupt") from None
    from .checkpoint import weight_map

    wmap = weight_map(data, f"{label}/{INDEX}")
    if not all(isinstance(v, str) for v in wmap.values()):
        bad = next(k for k, v in wmap.items() if not isinstance(v, str))
        raise CheckpointError(f"{label}/{INDEX}: weight_map[{str(bad)[:80]!r}] is not a shard file name")
    return {str(k): v for k, v in wmap.items()}


def _max_header() -> int:
    from huggingface_hub import constants

    from .checkpoint import MAX_HEADER

    return min(MAX_HEADER, int(getattr(constants, "SAFETENSORS_MAX_HEADER_LENGTH", MAX_HEADER)))


def _remote_header(cfg: HubConfig, name: str, meta: Any, timeout: float, transfer: Transfer) -> tuple[list, dict]:
    """One file's header by two range requests: bytes 0-7 (the length N), then bytes 8 to 8+N-1."""
    from .checkpoint import CheckpointError

    where = f"{cfg.label}/{name}"
    size = meta.size
    head = _range(cfg, name, meta, 0, 8, timeout, transfer, "header length")
    if len(head) < 8:
        raise CheckpointError(f"{where}: {len(head)} bytes, too short for a safetensors header; the file is truncated")
    (n,) = struct.unpack("<Q", head)
    limit = _max_header()
    if n > limit:
        raise CheckpointError(f"{where}: header claims {n:,} bytes (limit {limit:,}); not a safetensors file, or "
                              "corrupt")
    if size is not None and n > size - 8:
        raise CheckpointError(f"{where}: header claims {n:,} bytes but only {max(size - 8, 0):,} follow; the file is "
                              "truncated")
    raw = _range(cfg, name, meta, 8, n, timeout, transfer, "header")
    if len(raw) < n:
        raise CheckpointError(f"{where}: header claims {n:,} bytes but the server sent {len(raw):,}; the file is "
                              "truncated")
    return _parse(where, raw, n, size)


def _range(cfg: HubConfig, name: str, meta: Any, start: int, length: int, timeout: float, transfer: Transfer,
           what: str) -> bytes:
    """Bytes [start, start+length) of a repo file, and never more: a server that ignores Range is cut off."""
    from huggingface_hub.utils import build_hf_headers, get_session

    from .checkpoint import CheckpointError

    if length == 0:
        return b""
    url = meta.location
    headers = build_hf_headers()
    if not _same_host(url, cfg.endpoint):
        headers.pop("authorization", None)  # a signed CDN url: the token stays on the Hub
    headers["Range"] = f"bytes={start}-{start + length - 1}"
    headers["Accept-Encoding"] = "identity"
    deadline = time.monotonic() + 3 * timeout  # a server that drips bytes is cut off too
    got = bytearray()
    with get_session().stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as response:
        if response.status_code not in (200, 206):
            response.read()
            from huggingface_hub.utils import hf_raise_for_status

            hf_raise_for_status(response)
            raise CheckpointError(f"{cfg.label}/{name}: the Hub answered HTTP {response.status_code} to a range "
                                  "request; try again later")
        skip = start if response.status_code == 200 else 0  # Range ignored: the body starts at byte 0
        for chunk in response.iter_raw():
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            got += chunk[: length - len(got)]
            if len(got) >= length:
                break
            if time.monotonic() > deadline:
                timeout_cls, _ = _http_errors()
                raise timeout_cls(f"reading {what} of {name} took longer than {3 * timeout:g}s")
    transfer.add(name, f"{what}: bytes {start}-{start + length - 1}", len(got))
    return bytes(got)


def _same_host(url: str, endpoint: str) -> bool:
    from urllib.parse import urlsplit

    a, b = urlsplit(url), urlsplit(endpoint)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _parse(where: str, raw: bytes, n: int, size: int | None) -> tuple[list, dict]:
    """A header's JSON, validated as checkpoint.py validates a local one: unique keys, no NaN or Infinity,
    string metadata, each entry by ``checkpoint._tensor``, and (when the file's size is known) the layout rule
    that the tensors' data is contiguous from byte 0 to the end of the file."""
    from . import checkpoint

    corrupt = "the file is corrupt or not safetensors"
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=checkpoint._unique_keys,
                            parse_constant=checkpoint._no_constant)
    except checkpoint._Duplicate as dup:
        raise checkpoint.CheckpointError(f"{where}: {dup.key!r} appears twice in the header (tensor names, and "
                                         f"each tensor's fields, must be unique); {corrupt}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError and 4,300-digit ints too
        raise checkpoint.CheckpointError(f"{where}: the header is not valid JSON; {corrupt}") from None
    if not isinstance(header, dict):
        raise checkpoint.CheckpointError(f"{where}: the header is not a JSON object; {corrupt}")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise checkpoint.CheckpointError(f"{where}: __metadata__ must map names to strings; {corrupt}")
    data_len = (size - 8 - n) if size is not None else math.inf
    label = Path(where)
    # checkpoint._tensor validates one entry exactly as for a local file (the message names ``where``)
    out = [checkpoint._tensor(label, name, info, data_len) for name, info in header.items()]  # type: ignore[arg-type]
    if size is not None:  # without the file's size the end of the data is unknown: the per-tensor checks only
        checkpoint._check_layout(label, out, data_len)  # type: ignore[arg-type]
    out = [dataclasses.replace(t, file=where.rsplit("/", 1)[-1]) for t in out]
    out.sort(key=lambda t: t.name)
    return out, dict(meta)
