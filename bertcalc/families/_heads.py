"""Task heads that several families share, and the head names bertcalc accepts.

``--head`` means the same in every family: ``model`` is the bare model, ``mlm`` its ForMaskedLM class,
``pretraining`` its ForPreTraining class (where one exists), ``seq-cls``, ``token-cls`` and ``qa`` the
classification and question-answering classes.
"""

from __future__ import annotations

from ..config import ModelConfig
from ..errors import UsageError
from ..model import Component, Dim
from ._parts import linear

HEAD_CLASSES = {
    "model": "Model",
    "mlm": "ForMaskedLM",
    "pretraining": "ForPreTraining",
    "seq-cls": "ForSequenceClassification",
    "token-cls": "ForTokenClassification",
    "qa": "ForQuestionAnswering",
    "multiple-choice": "ForMultipleChoice",
}
HEADS = tuple(HEAD_CLASSES)


def head_from_architectures(architectures: tuple[str, ...]) -> str | None:
    """``("BertForMaskedLM",)`` -> ``"mlm"``: the head a config.json says its weights were saved from."""
    for arch in architectures:
        for head, suffix in HEAD_CLASSES.items():
            if arch.endswith(suffix):
                return head
    return None


def check_head(head: str, family_display: str, supported: tuple[str, ...]) -> None:
    if head not in HEAD_CLASSES:
        raise UsageError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}", param="head")
    if head not in supported:
        raise UsageError(
            f"{family_display} has no {head} head in transformers; choose one of {', '.join(supported)}",
            param="head",
        )


def unused(cfg: ModelConfig, labels: bool, ties: bool, pad: bool = False) -> tuple[str, ...]:
    """The config fields a model class's shapes ignore, so the report header can leave them out: those of
    heads it lacks, and the family's memory-only fields (dropouts)."""
    used = (("num_labels", labels), ("tie_word_embeddings", ties), ("pad_token_id", pad))
    return tuple(f for f, u in used if not u) + cfg.MEMORY_ONLY


def token_classifier(H: Dim, C: Dim) -> Component:
    """``classifier = nn.Linear(hidden_size, num_labels)`` on every token."""
    return Component("token classifier", (
        linear("classifier", "classifier", H, C, role="cls_out", description="logits per token"),
    ))


def qa_head(H: Dim, C: Dim) -> Component:
    """``qa_outputs = nn.Linear(hidden_size, num_labels)``: start and end logits per token (num_labels is 2)."""
    return Component("QA head", (
        linear("qa_outputs", "qa_outputs", H, C, role="qa_out", description="start/end logits per token"),
    ))


def pooled_classifier(H: Dim, C: Dim) -> Component:
    """``classifier = nn.Linear(hidden_size, num_labels)`` on the pooled [CLS] output (BERT, ALBERT)."""
    return Component("sequence classifier", (
        linear("classifier", "classifier", H, C, tokens="first", role="cls_out", description="logits per sequence"),
    ))


def dense_classifier(H: Dim, C: Dim) -> Component:
    """RoBERTa's and ELECTRA's ClassificationHead: dense + tanh/gelu on [CLS], then ``out_proj``."""
    return Component("sequence classifier", (
        linear("dense", "classifier.dense", H, H, tokens="first", role="cls_dense", description="on [CLS]"),
        linear("out_proj", "classifier.out_proj", H, C, tokens="first", role="cls_out",
               description="logits per sequence"),
    ))
