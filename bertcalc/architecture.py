"""Config -> tensor list (and activation list), for each family and head."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import BertConfig
from .model import Architecture

if TYPE_CHECKING:
    from .activations import Activation

HEADS = ("model",)


def _family(cfg: BertConfig):
    from .families import bert

    return {"bert": bert}[cfg.family]


def build(cfg: BertConfig, head: str = "model", pooler: bool = True) -> Architecture:
    """The model's tensors, as HF would name and shape them."""
    return _family(cfg).build(cfg, head=head, pooler=pooler)


def forward(arch: Architecture, cfg: BertConfig, batch: int, seq: int) -> list[Activation]:
    """Activation shapes of one forward pass over ``batch`` sequences of ``seq`` tokens."""
    from .activations import Batch

    b = Batch.of(batch, seq, cfg.max_position_embeddings)
    return _family(cfg).forward(arch, cfg, b)
