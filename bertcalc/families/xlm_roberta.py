"""XLM-RoBERTa: ``transformers.models.xlm_roberta.modeling_xlm_roberta``.

RoBERTa's modules and tensors under ``XLMRoberta*`` class names (multilingual-e5 and bge-m3 are XLM-R
checkpoints). One difference shows in the state dict: HF 5's task models register their head before
``self.roberta``, so ``lm_head.*`` (``classifier.*``, ``qa_outputs.*``) come first, then ``roberta.*``. The tie
still runs from ``lm_head.decoder.weight`` to ``roberta.embeddings.word_embeddings.weight``. The bare model and
the multiple-choice model keep the pooler (after the encoder, as in RoBERTa).
"""

from typing import ClassVar

from pydantic import Field

from ..config import Size
from ..model import Architecture
from .roberta import RobertaConfig, build_as

HF_CONFIG = "XLMRobertaConfig"  # transformers' config class
HF_PREFIX = "XLMRoberta"  # transformers' model classes
BASE_PREFIX = "roberta."  # the base model's name inside a task model
POOLER_ARG = True  # whether the bare model takes add_pooling_layer
ORDER = 6
HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm")
# peft.utils.constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["xlm-roberta"] (peft 0.21): LoRA's default
LORA_TARGETS = ("query", "value")


class XLMRobertaConfig(RobertaConfig):
    """HuggingFace ``XLMRobertaConfig``'s shape fields and defaults (its vocab_size default is BERT's 30522;
    the released checkpoints have 250002)."""

    family: ClassVar[str] = "xlm_roberta"
    display: ClassVar[str] = "XLM-RoBERTa"

    vocab_size: Size = Field(30522, description="Tokens in the vocabulary (rows of word_embeddings).")


def build(cfg: XLMRobertaConfig, head: str = "model", pooler_: bool = True) -> Architecture:
    return build_as(cfg, head, pooler_, family="xlm_roberta", display="XLM-RoBERTa", class_prefix=HF_PREFIX,
                    heads=HEADS, head_first=True)


CONFIG = XLMRobertaConfig
