"""Config -> tensor list (and activation list), for each family and head."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ModelConfig
from .model import Architecture

if TYPE_CHECKING:
    from .activations import Activation, Batch


def family_module(cfg: ModelConfig):
    from . import families

    return families.module(cfg.family)


def heads_of(family: str) -> tuple[str, ...]:
    """The ``--head`` values a family's HF classes offer."""
    from . import families

    return families.module(family).HEADS


def build(cfg: ModelConfig, head: str = "model", pooler: bool = True) -> Architecture:
    """The model's tensors, as HF would name and shape them, for the model class ``head`` selects."""
    if not pooler and head != "model":
        from .errors import UsageError, arg

        raise UsageError(
            f"{arg('pooler', py='False')} applies to {arg('head', 'model', repr('model'))} only; the {head} class "
            "decides its own pooler", param="pooler"
        )
    return family_module(cfg).build(cfg, head=head, pooler_=pooler)


def check_batch(cfg: ModelConfig, batch: int, seq: int) -> Batch:
    """The batch and sequence of a forward pass, checked against the position table."""
    from .activations import Batch

    d = cfg.dims
    why = "max_position_embeddings"
    if d.P and d.max_seq != d.P:  # a table with a padding offset (RoBERTa); P = 0: no table (rotary, relative)
        why = f"max_position_embeddings {d.P} minus the padding offset {d.P - d.max_seq}"
    # no table (rotary, relative positions: P = 0): the length the config declares, which HF's model also keeps to
    return Batch.of(batch, seq, d.max_seq, why, "the position table" if d.P else "the config")


DEFAULT_CHOICES = 4  # SWAG, RACE, ARC: four candidate endings or answers per question


def rows(arch: Architecture, batch: int, choices: int | None) -> tuple[int, int | None]:
    """The rows the encoder runs over, and the number of choices: ``batch`` for a model whose input is
    ``[B, S]``; ``batch × choices`` for one whose input is ``[B, C, S]``, flattened to ``[B·C, S]`` (HF's
    ``input_ids.view(-1, S)``), with :data:`DEFAULT_CHOICES` when none is given."""
    from .errors import UsageError

    if not arch.choices:
        if choices is not None:
            raise UsageError(f"choices sizes a multiple-choice input [B, C, S]; {arch.model_class} takes [B, S]: "
                             "leave choices out, or count a ForMultipleChoice class", param="choices")
        return batch, None
    c = DEFAULT_CHOICES if choices is None else choices
    if isinstance(c, bool) or not isinstance(c, int) or c < 1:
        raise UsageError(f"choices must be a whole number of at least 1, got {c!r}", param="choices")
    from .config import MAX_SIZE, digits

    if c > MAX_SIZE:  # as the batch: a tensor dimension is an int64
        raise UsageError(f"choices of {digits(c)} digits is beyond int64; give at most 2^63 - 1", param="choices")
    if isinstance(batch, int) and not isinstance(batch, bool) and batch < 1:
        return batch, c  # check_batch names the batch
    return batch * c, c


def forward(arch: Architecture, cfg: ModelConfig, batch: int, seq: int, choices: int | None = None
            ) -> list[Activation]:
    """Activation shapes of one forward pass over ``batch`` sequences of ``seq`` tokens (``batch × choices``
    rows for a multiple-choice input)."""
    from .activations import forward as walk

    check_batch(cfg, batch, seq)
    n, c = rows(arch, batch, choices)
    return walk(arch, check_batch(cfg, n, seq), per_row="B·C" if c is not None else None)
