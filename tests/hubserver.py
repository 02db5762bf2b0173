"""A local stand-in for the Hugging Face Hub, for tests and for the README's Hub example.

It serves what ``huggingface_hub`` asks of the Hub when it downloads a file or reads a range of one, for repos
held in memory:

- ``HEAD /{repo}/resolve/{revision}/{file}``: ``X-Repo-Commit``, ``ETag``, ``Content-Length``, no body;
- ``GET`` of the same: the file, or with ``Range: bytes=a-b`` the bytes a..b (``206``, ``Content-Range``);
- errors as the Hub writes them: ``X-Error-Code`` ``RepoNotFound`` (404), ``RevisionNotFound`` (404),
  ``EntryNotFound`` (404, with ``X-Repo-Commit``), ``GatedRepo`` (401 without a token, 403 with a wrong one).

Every request is logged (:attr:`HubServer.log`), with the byte range served, so a test can prove which bytes
were read. A repo may stall: the server then accepts the request and answers nothing until it is stopped.

    with HubServer({"org/tiny": Repo({"config.json": b"{...}"})}) as hub:
        hub.url  # http://127.0.0.1:PORT, for HF_ENDPOINT
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


@dataclass(frozen=True)
class Sparse:
    """A large file held as its first bytes (a safetensors header) and its size; the rest reads as zeros."""

    head: bytes
    size: int

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, s: slice) -> bytes:
        start, stop, _ = s.indices(self.size)
        got = self.head[start:stop]
        return got + b"\0" * (max(stop - start, 0) - len(got))


@dataclass
class Repo:
    files: dict[str, bytes | Sparse]
    commit: str = ""  # default: derived from the files
    refs: tuple[str, ...] = ("main",)  # branches and tags that name the commit
    token: str | None = None  # gated: this token is needed
    stall: tuple[str, ...] = ()  # files whose requests hang ("*": all); "GET:file" stalls GET only

    def __post_init__(self) -> None:
        if not self.commit:
            h = hashlib.sha1()
            for name in sorted(self.files):
                f = self.files[name]
                h.update(name.encode() + b"\0" + (f if isinstance(f, bytes) else f.head + str(f.size).encode()))
            self.commit = h.hexdigest()


@dataclass
class Served:
    method: str
    repo: str
    file: str
    status: int
    range: tuple[int, int] | None = None  # inclusive byte range served, for a 206
    sent: int = 0  # body bytes sent
    authorized: bool = False


@dataclass
class HubServer:
    repos: dict[str, Repo]
    log: list[Served] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                server._handle(self, head=True)

            def do_GET(self) -> None:
                server._handle(self, head=False)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def served(self, method: str | None = None) -> list[Served]:
        with self._lock:
            return [s for s in self.log if method is None or s.method == method]

    # -------------------------------------------------------------------------------------------- handler

    def _record(self, s: Served) -> None:
        with self._lock:
            self.log.append(s)

    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        method = "HEAD" if head else "GET"
        m = RESOLVE.match(unquote(h.path.split("?", 1)[0]))
        if not m:
            return self._error(h, head, 404, "", method, "", h.path)
        repo_id, rev, file = m["repo"], m["rev"], m["file"]
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(h, head, 404, "RepoNotFound", method, repo_id, file, "Repository not found")
        auth = h.headers.get("Authorization") or ""
        if repo.token is not None and auth != f"Bearer {repo.token}":
            status = 403 if auth else 401
            return self._error(h, head, status, "GatedRepo", method, repo_id, file,
                               f"Access to model {repo_id} is restricted. You must be authenticated to access it.")
        if "*" in repo.stall or file in repo.stall or f"{method}:{file}" in repo.stall:
            self._record(Served(method, repo_id, file, 0, authorized=bool(auth)))
            self._stop.wait(60)  # answer nothing until the server stops
            return
        if rev != repo.commit and rev not in repo.refs:
            return self._error(h, head, 404, "RevisionNotFound", method, repo_id, file, "Invalid rev id")
        body = repo.files.get(file)
        if body is None:
            return self._error(h, head, 404, "EntryNotFound", method, repo_id, file, "Entry not found",
                               commit=repo.commit)
        start, end, status = 0, len(body) - 1, 200
        rng = h.headers.get("Range")
        if rng and not head:
            r = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not r or int(r[1]) >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return self._record(Served(method, repo_id, file, 416, authorized=bool(auth)))
            start = int(r[1])
            end = min(int(r[2]), len(body) - 1) if r[2] else len(body) - 1
            status = 206
        chunk = body[start : end + 1]
        h.send_response(status)
        h.send_header("X-Repo-Commit", repo.commit)
        tag = body if isinstance(body, bytes) else body.head + str(body.size).encode()
        h.send_header("ETag", '"' + hashlib.sha256(tag).hexdigest() + '"')
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(len(chunk) if not head else len(body)))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        h.end_headers()
        if not head:
            h.wfile.write(chunk)
        self._record(Served(method, repo_id, file, status, (start, end) if status == 206 else None,
                            0 if head else len(chunk), bool(auth)))

    def _error(self, h: BaseHTTPRequestHandler, head: bool, status: int, code: str, method: str, repo: str,
               file: str, message: str = "", commit: str | None = None) -> None:
        body = b"" if head else json.dumps({"error": message or "not found"}).encode()
        h.send_response(status)
        if code:
            h.send_header("X-Error-Code", code)
        if message:
            h.send_header("X-Error-Message", message)
        if commit:
            h.send_header("X-Repo-Commit", commit)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body:
            h.wfile.write(body)
        self._record(Served(method, repo, file, status))


# ------------------------------------------------------------------------------------------ building repos


def header_length(data: bytes) -> int:
    """N, the length of a safetensors file's JSON header; its tensor data starts at byte 8 + N."""
    return struct.unpack("<Q", data[:8])[0]


def safetensors_bytes(tensors: dict[str, Any]) -> bytes:
    from safetensors.numpy import save

    return save(tensors)


def checkpoint_repo(config: dict[str, Any], head: str = "model", *, rename=None, shards: int = 0,
                    dtype: str = "float32", extra: dict[str, Any] | None = None, pooler: bool = True,
                    token: str | None = None, refs: tuple[str, ...] = ("main",)) -> Repo:
    """A repo holding ``config.json`` and the safetensors tensors bertcalc predicts for ``config`` and ``head``,
    every tensor filled with a distinct non-zero byte pattern (so a leaked data byte could not pass for a header).

    ``rename(name) -> name`` rewrites stored names (legacy checkpoints); ``shards`` splits the file with an index.
    """
    import numpy as np

    from bertcalc.architecture import build
    from bertcalc.config import config_class, validate
    from bertcalc.loading import hf_source

    source = hf_source(config, "test")
    model_cfg = validate(config_class(source.family), source.data)
    arch = build(model_cfg, head=head, pooler=pooler)
    tensors: dict[str, Any] = {}
    for i, (name, spec) in enumerate(arch.tensors()):
        if spec.tied_to is not None:
            continue
        stored = rename(name) if rename else name
        tensors[stored] = np.full(spec.shape, 1 + i % 200, dtype=dtype)
    tensors.update(extra or {})
    files = {"config.json": json.dumps(config, indent=2).encode()}
    if not shards:
        files["model.safetensors"] = safetensors_bytes(tensors)
    else:
        weight_map = shard_plan(tensors, shards)
        for fname in dict.fromkeys(weight_map.values()):
            files[fname] = safetensors_bytes({n: t for n, t in tensors.items() if weight_map[n] == fname})
        files["model.safetensors.index.json"] = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    return Repo(files, token=token, refs=refs)


def fill_cache(cache: Path, repo_id: str, repo: Repo, files: tuple[str, ...] = ("config.json",)) -> Path:
    """Write ``files`` of ``repo`` into an HF cache folder in huggingface_hub's layout (blobs, snapshots, refs),
    as ``hf_hub_download`` leaves it. Returns the snapshot folder."""
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    snap = folder / "snapshots" / repo.commit
    snap.mkdir(parents=True, exist_ok=True)
    (folder / "blobs").mkdir(exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    for ref in repo.refs:
        (folder / "refs" / ref).write_text(repo.commit)
    for name in files:
        data = repo.files[name]
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snap / name
        if not link.exists():
            link.symlink_to(Path("..", "..", "blobs", blob.name))
    return snap


def sparse_safetensors(tensors: dict[str, tuple[str, tuple[int, ...]]]) -> Sparse:
    """A safetensors file of this size and header, without its data: ``{name: (dtype, shape)}``."""
    import math

    width = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    at = 0
    for name in sorted(tensors):
        dtype, shape = tensors[name]
        n = math.prod(shape) * width[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return Sparse(struct.pack("<Q", len(raw)) + raw, 8 + len(raw) + at)


# google-bert/bert-base-uncased's config.json (its values as published on the Hub), for the README's example
BERT_BASE_UNCASED = {
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
    "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522,
}


def readme_repos() -> dict[str, Repo]:
    """The repo the README's Hub examples read: bert-base-uncased's config, and a checkpoint in its layout (a
    BertForPreTraining state dict with the bert. prefix, LayerNorm gamma/beta, position_ids), data left sparse."""
    from bertcalc.architecture import build
    from bertcalc.config import config_class, validate
    from bertcalc.loading import hf_source

    cfg = validate(config_class("bert"), hf_source(BERT_BASE_UNCASED, "readme").data)
    names = {n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"):
             ("F32", spec.shape) for n, spec in build(cfg, head="pretraining").tensors() if spec.tied_to is None}
    names["bert.embeddings.position_ids"] = ("I64", (1, 512))
    files = {"config.json": json.dumps(BERT_BASE_UNCASED, indent=2).encode(),
             "model.safetensors": sparse_safetensors(names)}
    return {"google-bert/bert-base-uncased": Repo(files)}


def readme_env(home: Path, url: str) -> dict[str, str]:
    """The environment README examples run in: huggingface_hub pointed at the local Hub, a fresh HF_HOME."""
    return {"NO_COLOR": "1", "COLUMNS": "200", "PATH": "", "HF_ENDPOINT": url, "HF_HOME": str(home),
            "HF_HUB_DISABLE_TELEMETRY": "1"}


def shard_plan(tensors: dict, shards: int) -> dict[str, str]:
    """``save_pretrained``'s layout for ``shards`` files: tensor name -> ``model-0000k-of-0000n.safetensors``,
    names sorted and split evenly (the shard index's ``weight_map``)."""
    names = sorted(tensors)
    per = -(-len(names) // shards)
    return {n: f"model-{i // per + 1:05d}-of-{shards:05d}.safetensors" for i, n in enumerate(names)}
