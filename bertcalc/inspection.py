"""A checkpoint's tensors against what its config predicts: matched, missing, unexpected, shape mismatch.

Real checkpoints have quirks, handled here rather than reported as differences:

- ``embeddings.position_ids`` (and ``token_type_ids``): index buffers that transformers registers as
  non-persistent today but older versions saved. They are listed as buffers, never counted as parameters.
- a missing or extra base-model prefix: a bare ``BertModel`` saved without ``bert.``, or a task checkpoint
  inspected as the bare model. Names are matched with the prefix added or removed, and a note says so.
- tied weights: ``save_pretrained`` stores a tied tensor once, so a tied name absent from the file is fine.
- legacy LayerNorm names: Google's original BERT checkpoints (``bert-base-uncased`` on the Hub) call a
  LayerNorm's parameters ``gamma`` and ``beta``; transformers renames ``LayerNorm.gamma``/``LayerNorm.beta`` to
  ``LayerNorm.weight``/``LayerNorm.bias`` on load, and so does this check: the row is matched, with a note.
- a task checkpoint inspected as the bare model (``bert-base-uncased`` is a ``BertForPreTraining`` state dict,
  checked with ``--head model``): the tensors of the family's task heads (``cls.*``, ``classifier.*``, ...) are
  what ``from_pretrained`` drops with a warning. They are listed as ``unused``, not as differences, and the base
  model is judged complete or not on its own tensors.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar

from .checkpoint import Checkpoint, StoredTensor
from .model import Architecture, ModelReport, TensorSpec, identify
from .records import frozen

# transformers' "legacy" key renamings on load (conversion_mapping.py): TF-era LayerNorm parameter names
LEGACY_RENAMES = (("LayerNorm.gamma", "LayerNorm.weight"), ("LayerNorm.beta", "LayerNorm.bias"))

@frozen
class InspectRow:
    name: str  # as stored (or, for missing/tied rows, as expected)
    status: str  # matched | mismatched | unexpected | missing | tied | buffer | unused
    dtype: str = ""
    shape: tuple[int, ...] | None = None  # stored shape
    expected: tuple[int, ...] | None = None  # predicted shape
    nbytes: int = 0
    note: str = ""


@frozen
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
    declared: dict[str, Any] = field(default_factory=dict)  # the config's dtype and quantization_config
    download: dict[str, Any] | None = None  # bytes read from the Hub, when asked (--download-bytes)

    @property
    def stored_dtypes(self) -> dict[str, int]:
        """Bytes of the stored parameters (buffers excluded) by dtype, largest first."""
        out: dict[str, int] = {}
        for r in self.rows:
            if r.dtype and r.status not in ("buffer", "missing", "tied"):
                out[r.dtype] = out.get(r.dtype, 0) + r.nbytes
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

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
    def unused(self) -> list[str]:
        return self._names("unused")

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
            "unused": self.unused,
            "stored_dtypes": self.stored_dtypes,
            **({"dtype": self.declared["dtype"]} if "dtype" in self.declared else {}),
            **({"quantization_config": self.declared["quantization_config"]}
               if "quantization_config" in self.declared else {}),
            **({"download_bytes": self.download["bytes"], "download": self.download} if self.download else {}),
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


def _buffers(arch: Architecture) -> tuple[str, ...]:
    """The family's buffers, without the task model's prefix (``embeddings.position_ids``)."""
    return tuple(b.name[len(arch.prefix):] if arch.prefix and b.name.startswith(arch.prefix) else b.name
                 for b in arch.buffers)


def _is_buffer(name: str, buffers: tuple[str, ...]) -> bool:
    return any(name == b or name.endswith("." + b) for b in buffers)


def legacy_name(name: str) -> str:
    """The name transformers gives a stored key on load: ``LayerNorm.gamma`` -> ``LayerNorm.weight``."""
    for old, new in LEGACY_RENAMES:
        name = name.replace(old, new)
    return name


def _head_tensors(arch: Architecture, cfg: Any) -> set[str]:
    """The names of every task head the family offers (outside the base model), for this config.

    Read from the components' templates, so the base model's layers (inside the prefix) are never expanded:
    the work follows the heads, not L."""
    from .architecture import build, heads_of
    from .errors import BertcalcError

    names: set[str] = set()
    for head in heads_of(arch.family):
        if head in (arch.head,):
            continue
        try:
            other = build(cfg, head=head)
        except BertcalcError:
            continue
        for comp in other.components:
            for t in comp.templates():
                if other.prefix and t.name.startswith(other.prefix):
                    continue
                names |= {t.at(i) for i in range(comp.start, comp.start + comp.repeat)} if "{i}" in t.name \
                    else {t.name}
    return names


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
        self.span = [(c.start, c.start + c.repeat) for c in arch.components]

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
            if hit is not None and self.span[hit[0]][0] <= int(rest[:digits]) < self.span[hit[0]][1]:
                return hit[0], int(rest[:digits]), hit[1]
        return None


def compare(ckpt: Checkpoint, arch: Architecture, config: dict[str, Any], label: str,
            model_config: Any = None) -> InspectReport:
    index = _Templates(arch)
    notes: list[str] = []
    # Legacy names first, as transformers renames them before it matches anything.
    names = {t.name for t in ckpt.tensors}
    legacy = {t.name: legacy_name(t.name) for t in ckpt.tensors
              if legacy_name(t.name) != t.name and legacy_name(t.name) not in names}
    stored: dict[str, StoredTensor] = {legacy.get(t.name, t.name): t for t in ckpt.tensors}
    if legacy:
        first = next(iter(legacy))
        notes.append(f"{len(legacy)} stored names use the original BERT's LayerNorm gamma/beta (such as {first}); "
                     "transformers renames them to weight/bias on load, and they are matched as renamed")

    def expected(name: str) -> bool:
        return index.find(name) is not None

    # Match names, allowing for a base-model prefix that is missing, or extra.
    base = arch.base_prefix
    buffer_names = _buffers(arch)
    rename: dict[str, str] = {}  # stored name -> expected name
    added = stripped = 0
    for name in stored:
        if expected(name) or _is_buffer(name, buffer_names):
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
    # A task checkpoint checked as the bare model: its heads' tensors are what from_pretrained leaves unused.
    heads = _head_tensors(arch, model_config) if stripped and model_config is not None and not arch.prefix \
        else set()

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
        note = t.problem or (f"renamed to {legacy[t.name].rsplit('.', 1)[-1]} on load" if t.name in legacy else "")
        rows.append(InspectRow(t.name, status, t.dtype, t.shape, spec.shape, t.nbytes, note))

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
            for i in range(comp.start, comp.start + comp.repeat):
                for t in templates:
                    if "{i}" not in t.name:
                        if t.name in once:
                            continue
                        once.add(t.name)
                    row(t.at(i), t)
        else:
            at, end = comp.start, comp.start + comp.repeat
            for i in [*sorted(present.get(ci, ())), end]:
                if i > at:  # layers at..i-1: nothing stored
                    _absent(rows, templates, at, i - 1, row)
                if i < end:
                    for t in templates:
                        row(t.at(i), t)
                at = i + 1
    unused = 0
    for key, t in stored.items():
        if expected(rename.get(key, key)):
            continue
        status = "buffer" if _is_buffer(key, buffer_names) else "unused" if key in heads else "unexpected"
        note = {"buffer": "index buffer, not a parameter",
                "unused": "a task head's tensor; not part of this model class"}.get(status, t.problem)
        if status == "unused" and t.problem:
            note = f"{note}; {t.problem}"
        unused += status == "unused"
        rows.append(InspectRow(t.name, status, t.dtype, t.shape, None, t.nbytes, note))
    if unused:
        notes.append(f"{unused} stored tensors belong to a task head ({arch.model_class} has none): from_pretrained "
                     f"leaves them unused, and the base model is checked on its own")

    buffers = sum(r.status == "buffer" for r in rows)
    if buffers:
        notes.append(f"{buffers} index buffer(s) such as embeddings.position_ids are stored too: older "
                     "transformers saved them; they hold no parameters and are not counted")
    params = sum(t.elements for t in ckpt.tensors if not _is_buffer(t.name, buffer_names))
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
