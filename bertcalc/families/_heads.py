"""Task heads that several families share, and the head names bertcalc accepts.

``--head`` means the same in every family: ``model`` is the bare model, ``mlm`` its ForMaskedLM class,
``pretraining`` its ForPreTraining class (where one exists), ``seq-cls``, ``token-cls`` and ``qa`` the
classification and question-answering classes, ``multiple-choice`` its ForMultipleChoice class (input
``[B, C, S]``, one logit per choice), ``causal-lm`` its ForCausalLM class (BERT's is ``BertLMHeadModel``) and
``nsp`` BERT's ForNextSentencePrediction.
"""

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
    "causal-lm": "ForCausalLM",
    "nsp": "ForNextSentencePrediction",
}
HEADS = tuple(HEAD_CLASSES)
# the PEFT task type (peft.TaskType) whose PeftModel class wraps each head's HF class; the others: a plain PeftModel
PEFT_TASKS = {"seq-cls": "SEQ_CLS", "token-cls": "TOKEN_CLS", "qa": "QUESTION_ANS", "causal-lm": "CAUSAL_LM"}
# class names that do not follow ``Prefix + suffix``: BERT's causal LM is BertLMHeadModel
OTHER_SUFFIXES = {"LMHeadModel": "causal-lm"}
_SUFFIXES = sorted([*((s, h) for h, s in HEAD_CLASSES.items()), *OTHER_SUFFIXES.items()], key=lambda sh: -len(sh[0]))


def head_from_architectures(architectures: tuple[str, ...]) -> str | None:
    """``("BertForMaskedLM",)`` -> ``"mlm"``: the head a config.json says its weights were saved from. The
    longest suffix wins, so ``BertLMHeadModel`` is ``causal-lm``, not ``model``."""
    for arch in architectures:
        for suffix, head in _SUFFIXES:
            if arch.endswith(suffix):
                return head
    return None


def check_head(head: str, family_display: str, supported: tuple[str, ...]) -> None:
    if head not in HEAD_CLASSES:
        raise UsageError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}", param="head")
    if head not in supported:
        raise UsageError(
            f"bertcalc has no {head} head for {family_display} (transformers may have one; it is not modelled "
            f"here); choose one of {', '.join(supported)}",
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


def choice_classifier(H: Dim, module: str = "classifier") -> Component:
    """``classifier = nn.Linear(hidden_size, 1)``: one logit per choice, on each of the B·C pooled rows."""
    return Component("multiple-choice classifier", (
        linear("classifier", module, H, Dim(1), tokens="first", role="cls_out", description="one logit per choice"),
    ))


def qa_notes(cfg: ModelConfig, model_class: str) -> tuple[str, ...]:
    """A QA head with num_labels other than 2 builds in transformers, but its forward splits the logits into
    start and end (``logits.split(1, dim=-1)`` unpacked into two) and fails."""
    if cfg.num_labels == 2:
        return ()
    return (f"{model_class} builds with num_labels {cfg.num_labels}, but its forward fails in transformers: it "
            "splits the logits into start and end, which needs num_labels 2",)


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
