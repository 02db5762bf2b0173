"""CamemBERT: ``transformers.models.camembert.modeling_camembert``.

RoBERTa's modules and tensors under ``Camembert*`` class names, with XLM-RoBERTa's state-dict order: HF 5's
task models register their head before ``self.roberta``, so ``lm_head.*`` (``classifier.*``, ``qa_outputs.*``)
come first; the tie runs from ``lm_head.decoder.weight`` to ``roberta.embeddings.word_embeddings.weight``.
"""

from typing import ClassVar

from pydantic import Field

from ..config import Size
from ..model import Architecture
from .roberta import RobertaConfig, build_as

HF_CONFIG = "CamembertConfig"  # transformers' config class
HF_PREFIX = "Camembert"  # transformers' model classes
BASE_PREFIX = "roberta."  # the base model's name inside a task model
POOLER_ARG = True  # whether the bare model takes add_pooling_layer
ORDER = 7
HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm")


class CamembertConfig(RobertaConfig):
    """HuggingFace ``CamembertConfig``'s shape fields and defaults (vocab_size 30522 by default; camembert-base
    has 32005)."""

    family: ClassVar[str] = "camembert"
    display: ClassVar[str] = "CamemBERT"

    vocab_size: Size = Field(30522, description="Tokens in the vocabulary (rows of word_embeddings).")


def build(cfg: CamembertConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    return build_as(cfg, head, pooler_, family="camembert", display="CamemBERT", class_prefix=HF_PREFIX,
                    heads=HEADS, head_first=True)


CONFIG = CamembertConfig
