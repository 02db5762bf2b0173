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
        from .errors import UsageError

        raise UsageError(
            f"--no-pooler applies to --head model only; the {head} class decides its own pooler", param="pooler"
        )
    return family_module(cfg).build(cfg, head=head, pooler_=pooler)


def check_batch(cfg: ModelConfig, batch: int, seq: int) -> Batch:
    """The batch and sequence of a forward pass, checked against the position table."""
    from .activations import Batch

    d = cfg.dims
    why = "max_position_embeddings"
    if d.max_seq != d.P:
        why = f"max_position_embeddings {d.P} minus the padding offset {d.P - d.max_seq}"
    return Batch.of(batch, seq, d.max_seq, why)


def forward(arch: Architecture, cfg: ModelConfig, batch: int, seq: int) -> list[Activation]:
    """Activation shapes of one forward pass over ``batch`` sequences of ``seq`` tokens."""
    from .activations import forward as walk

    return walk(arch, check_batch(cfg, batch, seq))
