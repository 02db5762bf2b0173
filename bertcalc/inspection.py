"""A checkpoint's tensors against what its config predicts: matched, missing, unexpected, shape mismatch.

Real checkpoints have quirks, handled here rather than reported as differences:

- ``embeddings.position_ids`` (and ``token_type_ids``): index buffers that transformers registers as
  non-persistent today but older versions saved. They are listed as buffers, never counted as parameters.
- a missing or extra base-model prefix: a bare ``BertModel`` saved without ``bert.``, or a task checkpoint
  inspected as the bare model. Names are matched with the prefix added or removed, and a note says so.
- tied weights: ``save_pretrained`` stores a tied tensor once, so a tied name absent from the file is fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .checkpoint import Checkpoint, StoredTensor
from .model import Architecture, ModelReport, TensorSpec, identify

BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
BASE_PREFIX = {"bert": "bert.", "roberta": "roberta.", "distilbert": "distilbert.", "albert": "albert.",
               "electra": "electra."}


@dataclass(frozen=True)
class InspectRow:
    name: str  # as stored (or, for missing/tied rows, as expected)
    status: str  # matched | mismatched | unexpected | missing | tied | buffer
    dtype: str = ""
    shape: tuple[int, ...] | None = None  # stored shape
    expected: tuple[int, ...] | None = None  # predicted shape
    nbytes: int = 0
    note: str = ""


@dataclass(frozen=True)
class InspectReport(ModelReport):
    kind: ClassVar[str] = "inspect"

    path: str
    files: tuple[str, ...]
    rows: tuple[InspectRow, ...]
    notes: tuple[str, ...]
    expected_parameters: int  # bertcalc's unique parameters for this config and head
    stored_parameters: int  # elements of the stored tensors that are parameters (buffers excluded)
    stored_bytes: int
    metadata: dict[str, str]
    only_differences: bool = False  # render only the rows that are not ok (the counts stay whole)

    def shown(self) -> tuple[InspectRow, ...]:
        if not self.only_differences:
            return self.rows
        return tuple(r for r in self.rows if r.status in ("mismatched", "missing", "unexpected"))

    def _names(self, status: str) -> list[str]:
        return [r.name for r in self.rows if r.status == status]

    @property
    def matched(self) -> int:
        return sum(r.status == "matched" for r in self.rows)

    @property
    def missing(self) -> list[str]:
        return self._names("missing")

    @property
    def unexpected(self) -> list[str]:
        return self._names("unexpected")

    @property
    def mismatched(self) -> list[InspectRow]:
        return [r for r in self.rows if r.status == "mismatched"]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "path": self.path,
            "files": list(self.files),
            "model_class": self.model_class,
            "family": self.family,
            "head": self.head,
            "config": dict(self.config),
            "matched": self.matched,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "mismatched": [{"name": r.name, "expected": list(r.expected or ()), "found": list(r.shape or ())}
                           for r in self.mismatched],
            "buffers": self._names("buffer"),
            "tied_not_stored": self._names("tied"),
            "expected_parameters": self.expected_parameters,
            "stored_parameters": self.stored_parameters,
            "stored_bytes": self.stored_bytes,
            "notes": list(self.notes),
            "tensors": [
                {"name": r.name, "status": r.status, "dtype": r.dtype or None,
                 "shape": list(r.shape) if r.shape is not None else None,
                 "expected": list(r.expected) if r.expected is not None else None,
                 "bytes": r.nbytes} | ({"note": r.note} if r.note else {})
                for r in self.shown()
            ],
        }


def _absent(rows: list[InspectRow], templates: tuple[TensorSpec, ...], first: int, last: int, row: Any) -> None:
    """Layers ``first..last`` of a templated component, none of them stored: one row per template."""
    if first == last:
        for t in templates:
            row(t.at(first), t)
        return
    n = last - first + 1
    for t in templates:
        name = t.name.replace("{i}", f"{{{first}..{last}}}")
        if t.tied_to is not None:
            rows.append(InspectRow(name, "tied", expected=t.shape, note=f"tied to {t.tied_to}; stored once ({n:,} "
                                   "layers)"))
        else:
            rows.append(InspectRow(name, "missing", expected=t.shape,
                                   note=f"missing in layers {first:,} to {last:,} "
                                   f"({n:,} layers)"))


def _is_buffer(name: str) -> bool:
    return any(name == b or name.endswith("." + b) for b in BUFFERS)


# Up to this many predicted tensors, every one is listed by name, as the state dict holds them. Beyond it
# (a config with 10^8 layers), runs of layers the checkpoint holds nothing of are listed once per tensor
# template, named with the range of layers (encoder.layer.{12..99999999}.attention.self.query.weight): the
# work follows the header's size, never L.
EXPAND_LIMIT = 100_000


class _Templates:
    """Which predicted tensor a stored name is, without expanding the layer templates: fixed names by dict,
    templated ones (``encoder.layer.{i}.…``) by prefix, then the layer index, then the rest of the name."""

    def __init__(self, arch: Architecture) -> None:
        self.fixed: dict[str, tuple[int, TensorSpec]] = {}
        self.templated: dict[str, dict[str, tuple[int, TensorSpec]]] = {}  # prefix -> suffix -> (comp, spec)
        for ci, comp in enumerate(arch.components):
            for t in comp.templates():
                if "{i}" in t.name:
                    prefix, _, suffix = t.name.partition("{i}")
                    self.templated.setdefault(prefix, {})[suffix] = (ci, t)
                elif comp.repeat == 1:
                    self.fixed[t.name] = (ci, t)
                else:  # a repeated component whose names hold no index: each name once per instance
                    self.fixed.setdefault(t.name, (ci, t))
        self.repeat = [c.repeat for c in arch.components]

    def find(self, name: str) -> tuple[int, int, TensorSpec] | None:
        """``(component, layer index, spec)`` for a predicted name, else None."""
        hit = self.fixed.get(name)
        if hit is not None:
            return hit[0], 0, hit[1]
        for prefix, suffixes in self.templated.items():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            digits = len(rest) - len(rest.lstrip("0123456789"))
            if not digits or (digits > 1 and rest[0] == "0") or digits > 20:
                continue
            hit = suffixes.get(rest[digits:])
            if hit is not None and int(rest[:digits]) < self.repeat[hit[0]]:
                return hit[0], int(rest[:digits]), hit[1]
        return None


def compare(ckpt: Checkpoint, arch: Architecture, config: dict[str, Any], label: str) -> InspectReport:
    index = _Templates(arch)
    stored: dict[str, StoredTensor] = {t.name: t for t in ckpt.tensors}
    notes: list[str] = []

    def expected(name: str) -> bool:
        return index.find(name) is not None

    # Match names, allowing for a base-model prefix that is missing, or extra.
    base = BASE_PREFIX.get(arch.family, "")
    rename: dict[str, str] = {}  # stored name -> expected name
    added = stripped = 0
    for name in stored:
        if expected(name) or _is_buffer(name):
            continue
        if arch.prefix and expected(arch.prefix + name):
            rename[name] = arch.prefix + name
            added += 1
        elif not arch.prefix and name.startswith(base) and expected(name[len(base):]):
            rename[name] = name[len(base):]
            stripped += 1
    if added:
        notes.append(f"{added} stored names lack the '{arch.prefix}' prefix (a bare base model saved as is); "
                     f"matched with it added")
    if stripped:
        notes.append(f"{stripped} stored names carry the '{base}' prefix of a task model; matched without it")
    by_expected = {rename.get(n, n): t for n, t in stored.items()}

    rows: list[InspectRow] = []

    def row(name: str, spec: TensorSpec) -> None:
        t = by_expected.get(name)
        if t is None:
            if spec.tied_to is not None:
                rows.append(InspectRow(name, "tied", expected=spec.shape, note=f"tied to {spec.tied_to}; stored once"))
            else:
                rows.append(InspectRow(name, "missing", expected=spec.shape))
            return
        status = "matched" if t.shape == spec.shape else "mismatched"
        rows.append(InspectRow(t.name, status, t.dtype, t.shape, spec.shape, t.nbytes, t.problem))

    expand = arch.tensor_count() <= EXPAND_LIMIT
    present: dict[int, set[int]] = {}  # component -> layer indices the checkpoint holds something of
    if not expand:
        for name in by_expected:
            hit = index.find(name)
            if hit is not None:
                present.setdefault(hit[0], set()).add(hit[1])
    for ci, comp in enumerate(arch.components):
        templates = tuple(comp.templates())
        if not any("{i}" in t.name for t in templates):  # listed once, however often it repeats
            for t in templates:
                row(t.name, t)
        elif expand:
            once: set[str] = set()  # a name without {i} in a repeated component is one state-dict entry
            for i in range(comp.repeat):
                for t in templates:
                    if "{i}" not in t.name:
                        if t.name in once:
                            continue
                        once.add(t.name)
                    row(t.at(i), t)
        else:
            at = 0
            for i in [*sorted(present.get(ci, ())), comp.repeat]:
                if i > at:  # layers at..i-1: nothing stored
                    _absent(rows, templates, at, i - 1, row)
                if i < comp.repeat:
                    for t in templates:
                        row(t.at(i), t)
                at = i + 1
    for t in ckpt.tensors:
        if expected(rename.get(t.name, t.name)):
            continue
        status = "buffer" if _is_buffer(t.name) else "unexpected"
        note = "index buffer, not a parameter" if status == "buffer" else t.problem
        rows.append(InspectRow(t.name, status, t.dtype, t.shape, None, t.nbytes, note))

    buffers = sum(r.status == "buffer" for r in rows)
    if buffers:
        notes.append(f"{buffers} index buffer(s) such as embeddings.position_ids are stored too: older "
                     "transformers saved them; they hold no parameters and are not counted")
    params = sum(t.elements for t in ckpt.tensors if not _is_buffer(t.name))
    return InspectReport(
        path=ckpt.path,
        files=ckpt.files,
        **identify(arch, label, config),
        rows=tuple(rows),
        notes=tuple(notes),
        expected_parameters=arch.total_parameters,
        stored_parameters=params,
        stored_bytes=sum(t.nbytes for t in ckpt.tensors),
        metadata=ckpt.metadata,
    )
