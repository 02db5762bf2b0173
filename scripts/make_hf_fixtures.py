"""Generate the HuggingFace fixtures that bertcalc's shapes are tested against.

For each case below, build the real ``transformers`` model from a config (never from the hub) on the meta
device, so no weights are allocated, and record every state-dict name with its shape, plus
``model.num_parameters()``, and what ``FlopCounterMode`` counts (eager attention) for one forward pass and
for one training step (forward, the loss the class computes from its labels, backward) at batch 2 and
sequence 64 (or the longest the position table allows), with 2 choices for a multiple-choice class: its
input is ``[2, 2, S]``. A bare model's training loss is ``pooler_output.sum()`` where it has a pooler, else
``last_hidden_state.sum()``. The JSON files land in ``tests/fixtures/hf/`` and are committed; the test
suite reads them without torch.

    pip install torch==2.13.0 transformers
    python scripts/make_hf_fixtures.py            # rewrite every fixture
    python scripts/make_hf_fixtures.py --check    # exit 1 if a committed fixture differs from transformers
    python scripts/make_hf_fixtures.py --only mpnet   # one family's fixtures

It also writes ``tests/fixtures/modernbert-odd-mlm-config.json``: the ``config.json`` that ``save_pretrained``
writes for ModernBertForMaskedLM in the modernbert-odd config (what a user's checkpoint folder holds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hf"

HF_CONFIG = {"bert": "BertConfig", "roberta": "RobertaConfig", "distilbert": "DistilBertConfig",
             "albert": "AlbertConfig", "electra": "ElectraConfig", "xlm_roberta": "XLMRobertaConfig",
             "camembert": "CamembertConfig", "modernbert": "ModernBertConfig", "deberta_v2": "DebertaV2Config",
             "mpnet": "MPNetConfig", "roberta_prelayernorm": "RobertaPreLayerNormConfig",
             "xlm_roberta_xl": "XLMRobertaXLConfig"}
HF_PREFIX = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert", "albert": "Albert",
             "electra": "Electra", "xlm_roberta": "XLMRoberta", "camembert": "Camembert", "modernbert": "ModernBert",
             "deberta_v2": "DebertaV2", "mpnet": "MPNet", "roberta_prelayernorm": "RobertaPreLayerNorm",
             "xlm_roberta_xl": "XLMRobertaXL"}
HEAD_CLASSES = {"model": "Model", "mlm": "ForMaskedLM", "pretraining": "ForPreTraining",
                "seq-cls": "ForSequenceClassification", "token-cls": "ForTokenClassification",
                "qa": "ForQuestionAnswering", "multiple-choice": "ForMultipleChoice", "causal-lm": "ForCausalLM",
                "nsp": "ForNextSentencePrediction"}
CLASS_NAMES = {("bert", "causal-lm"): "BertLMHeadModel"}  # where HF's name is not prefix + suffix
ROBERTA_HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm")
FAMILY_HEADS = {
    "bert": ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm", "nsp"),
    "roberta": ROBERTA_HEADS,
    "distilbert": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
    "albert": ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice"),
    "electra": ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm"),
    "xlm_roberta": ROBERTA_HEADS,
    "camembert": ROBERTA_HEADS,
    "modernbert": ("model", "mlm", "seq-cls", "token-cls", "qa"),
    "deberta_v2": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
    "mpnet": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
    "roberta_prelayernorm": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
    "xlm_roberta_xl": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
}
POOLER_ARG = ("bert", "roberta", "albert", "xlm_roberta", "camembert", "mpnet", "roberta_prelayernorm",
              "xlm_roberta_xl")  # bare models taking add_pooling_layer
# these families' fixtures record FLOPs with ``flops`` below (the HF class computing its own loss; the bare
# model's loss is the sum of its pooled output, or of last_hidden_state); every other family's with flops_all
FLOP_FAMILIES = ("modernbert", "mpnet", "roberta_prelayernorm", "xlm_roberta_xl")
FLOP_BATCH, FLOP_SEQ, FLOP_CHOICES = 2, 64, 2
CHOICES = FLOP_CHOICES  # a multiple-choice input is [B, CHOICES, S]

# The configs of bertcalc's presets, written out here as HF keyword arguments (from the hub's config.json).
BERT_PRESETS = {
    "tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512),
    "mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
    "small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "medium": dict(num_hidden_layers=8, hidden_size=512, num_attention_heads=8, intermediate_size=2048),
    "base": dict(),
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
    "base-cased": dict(vocab_size=28996),
    "large-cased": dict(vocab_size=28996, num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                        intermediate_size=4096),
    "base-chinese": dict(vocab_size=21128),
    "base-multilingual-cased": dict(vocab_size=119547),
}
# microsoft/deberta-v3-{xsmall,small,base,large} config.json: what the four share
DEBERTA_V3 = dict(vocab_size=128100, max_position_embeddings=512, type_vocab_size=0, hidden_act="gelu",
                  layer_norm_eps=1e-7, relative_attention=True, max_relative_positions=-1, position_buckets=256,
                  norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
                  position_biased_input=False, pooler_hidden_act="gelu", pooler_dropout=0.0, pad_token_id=0)
FAMILY_PRESETS = {
    "roberta-base": ("roberta", dict(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                                     layer_norm_eps=1e-5)),
    "roberta-large": ("roberta", dict(vocab_size=50265, hidden_size=1024, num_hidden_layers=24,
                                      num_attention_heads=16, intermediate_size=4096, max_position_embeddings=514,
                                      type_vocab_size=1, layer_norm_eps=1e-5)),
    "distilbert-base": ("distilbert", dict()),
    "albert-base-v2": ("albert", dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                                      num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_new")),
    "electra-small-discriminator": ("electra", dict(embedding_size=128, hidden_size=256, num_hidden_layers=12,
                                                    num_attention_heads=4, intermediate_size=1024)),
    "electra-base-discriminator": ("electra", dict(embedding_size=768, hidden_size=768, num_hidden_layers=12,
                                                   num_attention_heads=12, intermediate_size=3072)),
    # FacebookAI/xlm-roberta-base, -large and almanach/camembert-base, as published
    "xlm-roberta-base": ("xlm_roberta", dict(vocab_size=250002, max_position_embeddings=514, type_vocab_size=1,
                                             layer_norm_eps=1e-5)),
    "xlm-roberta-large": ("xlm_roberta", dict(vocab_size=250002, hidden_size=1024, num_hidden_layers=24,
                                              num_attention_heads=16, intermediate_size=4096,
                                              max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)),
    "camembert-base": ("camembert", dict(vocab_size=32005, max_position_embeddings=514, type_vocab_size=1,
                                         layer_norm_eps=1e-5)),
    "mpnet-base": ("mpnet", dict(max_position_embeddings=514, layer_norm_eps=1e-5)),
    "xlm-roberta-xl": ("xlm_roberta_xl", dict(vocab_size=250880, hidden_size=2560, num_hidden_layers=36,
                                              num_attention_heads=32, intermediate_size=10240,
                                              max_position_embeddings=514, type_vocab_size=1)),
    # answerdotai/ModernBERT-base and -large, config.json
    "modernbert-base": ("modernbert", dict(vocab_size=50368, hidden_size=768, intermediate_size=1152,
                                           num_hidden_layers=22, num_attention_heads=12, local_attention=128,
                                           global_attn_every_n_layers=3, classifier_pooling="mean")),
    "modernbert-large": ("modernbert", dict(vocab_size=50368, hidden_size=1024, intermediate_size=2624,
                                            num_hidden_layers=28, num_attention_heads=16, local_attention=128,
                                            global_attn_every_n_layers=3, classifier_pooling="mean")),
    **{f"deberta-v3-{size}": ("deberta_v2", dict(DEBERTA_V3, hidden_size=h, num_hidden_layers=layers,
                                                  num_attention_heads=a, intermediate_size=i))
       for size, (h, layers, a, i) in {"xsmall": (384, 12, 6, 1536), "small": (768, 6, 12, 3072),
                                       "base": (768, 12, 12, 3072), "large": (1024, 24, 16, 4096)}.items()},
}

# Odd shapes that a formula written for BERT-base would get wrong.
BERT_ODD = {
    "odd-l0": dict(vocab_size=100, hidden_size=16, num_hidden_layers=0, num_attention_heads=4, intermediate_size=40,
                   max_position_embeddings=32, type_vocab_size=1),
    "odd-l1": dict(vocab_size=11, hidden_size=12, num_hidden_layers=1, num_attention_heads=3, intermediate_size=7,
                   max_position_embeddings=5, type_vocab_size=3),
    "odd-l3-a1": dict(vocab_size=1000, hidden_size=64, num_hidden_layers=3, num_attention_heads=1,
                      intermediate_size=100, max_position_embeddings=128, type_vocab_size=4),
}
FAMILY_ODD = {
    "roberta-odd": ("roberta", dict(vocab_size=77, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                                    intermediate_size=50, max_position_embeddings=40, type_vocab_size=1,
                                    pad_token_id=3)),
    "distilbert-odd": ("distilbert", dict(vocab_size=91, dim=20, n_layers=3, n_heads=5, hidden_dim=33,
                                          max_position_embeddings=17)),
    "albert-odd-groups": ("albert", dict(vocab_size=60, embedding_size=10, hidden_size=24, num_hidden_layers=4,
                                         num_hidden_groups=2, inner_group_num=3, num_attention_heads=4,
                                         intermediate_size=30, max_position_embeddings=20, type_vocab_size=3)),
    "albert-odd-l0": ("albert", dict(vocab_size=60, embedding_size=10, hidden_size=24, num_hidden_layers=0,
                                     num_attention_heads=4, intermediate_size=30, max_position_embeddings=20)),
    "electra-odd-noproject": ("electra", dict(vocab_size=70, embedding_size=32, hidden_size=32,
                                              num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                                              max_position_embeddings=24, type_vocab_size=3)),
    # H 30 (not a multiple of 64), 5 heads, a small vocabulary, more bias buckets than the forward reads, room
    # for the FLOPs' 64 tokens after the padding offset
    "mpnet-odd": ("mpnet", dict(vocab_size=77, hidden_size=30, num_hidden_layers=2, num_attention_heads=5,
                                intermediate_size=50, max_position_embeddings=70, relative_attention_num_buckets=36)),
    # andreasmadsen/efficient_mlm_m0.40's shapes (RoBERTa-base's), and an odd one
    "roberta-prelayernorm-base": ("roberta_prelayernorm", dict(vocab_size=50265, max_position_embeddings=514,
                                                               type_vocab_size=1, layer_norm_eps=1e-5)),
    "roberta-prelayernorm-odd": ("roberta_prelayernorm", dict(vocab_size=77, hidden_size=30, num_hidden_layers=2,
                                                              num_attention_heads=5, intermediate_size=50,
                                                              max_position_embeddings=70, type_vocab_size=3,
                                                              pad_token_id=3)),
    "xlm-roberta-xl-odd": ("xlm_roberta_xl", dict(vocab_size=77, hidden_size=30, num_hidden_layers=2,
                                                  num_attention_heads=5, intermediate_size=50,
                                                  max_position_embeddings=70, type_vocab_size=3, pad_token_id=3)),
    # H = 90 (not a multiple of 64), 5 heads of 18, a window of 16 < the sequence of 64, every bias on
    "modernbert-odd": ("modernbert", dict(vocab_size=97, hidden_size=90, num_hidden_layers=4, num_attention_heads=5,
                                          intermediate_size=70, max_position_embeddings=128, local_attention=16,
                                          global_attn_every_n_layers=2, pad_token_id=3, attention_bias=True,
                                          mlp_bias=True, norm_bias=True, classifier_bias=True, decoder_bias=False)),
    # layer_types as save_pretrained writes it, one layer (no template), mean pooling
    "modernbert-odd-l1": ("modernbert", dict(vocab_size=50, hidden_size=42, num_hidden_layers=1, num_attention_heads=3,
                                             intermediate_size=11, max_position_embeddings=64, local_attention=8,
                                             layer_types=["sliding_attention"], pad_token_id=0,
                                             classifier_pooling="mean")),
    # H 30 over 3 heads, small vocab, 5 position buckets (10 rows), v3's layout otherwise
    "deberta-odd": ("deberta_v2", dict(vocab_size=97, hidden_size=30, num_hidden_layers=2, num_attention_heads=3,
                                       intermediate_size=50, max_position_embeddings=40, type_vocab_size=0,
                                       relative_attention=True, position_buckets=5, norm_rel_ebd="layer_norm",
                                       share_att_key=True, pos_att_type="p2c|c2p", position_biased_input=False)),
    # v2's layout: own pos_key_proj / pos_query_proj, absolute positions, token types, an unbucketed span,
    # embedding_size != H (embed_proj), no relative LayerNorm, a ConvLayer
    "deberta-odd-v2": ("deberta_v2", dict(vocab_size=61, hidden_size=20, embedding_size=12, num_hidden_layers=3,
                                          num_attention_heads=5, intermediate_size=33, max_position_embeddings=24,
                                          type_vocab_size=3, relative_attention=True, max_relative_positions=7,
                                          share_att_key=False, pos_att_type=["c2p", "p2c"],
                                          position_biased_input=True, conv_kernel_size=3, conv_groups=2)),
    # H not a multiple of 64, an odd head count, a small vocabulary
    "xlm-roberta-odd": ("xlm_roberta", dict(vocab_size=83, hidden_size=45, num_hidden_layers=2, num_attention_heads=5,
                                            intermediate_size=70, max_position_embeddings=80, type_vocab_size=1,
                                            pad_token_id=1)),
    "camembert-odd": ("camembert", dict(vocab_size=61, hidden_size=21, num_hidden_layers=3, num_attention_heads=7,
                                        intermediate_size=33, max_position_embeddings=70, type_vocab_size=2,
                                        pad_token_id=2)),
}
# the five families' new heads (multiple-choice, causal-lm, nsp) in an odd size beside the presets: H not a
# multiple of 64, an odd head count, a small vocabulary; ELECTRA's summary without projection and activation
NEW_HEADS_ODD = {
    "bert-odd-heads": ("bert", dict(vocab_size=97, hidden_size=45, num_hidden_layers=2, num_attention_heads=5,
                                    intermediate_size=70, max_position_embeddings=80, type_vocab_size=3),
                       ("multiple-choice", "causal-lm", "nsp")),
    "electra-odd-summary": ("electra", dict(vocab_size=70, embedding_size=12, hidden_size=30, num_hidden_layers=2,
                                            num_attention_heads=3, intermediate_size=48, max_position_embeddings=80,
                                            summary_use_proj=False, summary_activation="",
                                            summary_last_dropout=0.0),
                            ("multiple-choice",)),
}


def cases() -> list[dict]:
    out = []

    def add(case: str, family: str, head: str, config: dict, pooler: bool = True, preset: str | None = None):
        out.append(dict(case=case, family=family, head=head, config=config, pooler=pooler, preset=preset))

    for name, cfg in {**BERT_PRESETS, **BERT_ODD}.items():
        preset = name if name in BERT_PRESETS else None
        add(f"bert-{name}-model", "bert", "model", cfg, True, preset)
        add(f"bert-{name}-model-nopooler", "bert", "model", cfg, False, preset)
    for name in ("tiny", "base"):
        for head in FAMILY_HEADS["bert"][1:]:
            add(f"bert-{name}-{head}", "bert", head, BERT_PRESETS[name], preset=name)
    add("bert-tiny-seq-cls-3labels", "bert", "seq-cls", {**BERT_PRESETS["tiny"], "num_labels": 3})
    add("bert-tiny-token-cls-9labels", "bert", "token-cls", {**BERT_PRESETS["tiny"], "num_labels": 9})
    add("bert-tiny-qa-3labels", "bert", "qa", {**BERT_PRESETS["tiny"], "num_labels": 3})
    add("bert-tiny-mlm-untied", "bert", "mlm", {**BERT_PRESETS["tiny"], "tie_word_embeddings": False})
    add("bert-tiny-pretraining-untied", "bert", "pretraining", {**BERT_PRESETS["tiny"], "tie_word_embeddings": False})
    for name, (family, cfg) in FAMILY_PRESETS.items():
        for head in FAMILY_HEADS[family]:
            add(f"{name}-{head}", family, head, cfg, preset=name)
    for name, (family, cfg) in FAMILY_ODD.items():
        for head in FAMILY_HEADS[family]:
            add(f"{name}-{head}", family, head, cfg)
        add(f"{name}-mlm-untied", family, "mlm", {**cfg, "tie_word_embeddings": False})
        add(f"{name}-seq-cls-4labels", family, "seq-cls", {**cfg, "num_labels": 4})
    for name, (family, cfg, heads) in NEW_HEADS_ODD.items():
        for head in heads:
            add(f"{name}-{head}", family, head, cfg)
    add("roberta-odd-model-nopooler", "roberta", "model", FAMILY_ODD["roberta-odd"][1], pooler=False)
    add("deberta-odd-mlm-nolegacy", "deberta_v2", "mlm", {**FAMILY_ODD["deberta-odd"][1], "legacy": False})
    add("deberta-odd-v2-c2p-only", "deberta_v2", "model", {**FAMILY_ODD["deberta-odd-v2"][1], "pos_att_type": "c2p"})
    # shared keys with c2p only: query_proj still projects the table, into a branch no loss reaches
    add("deberta-odd-c2p-only", "deberta_v2", "model", {**FAMILY_ODD["deberta-odd"][1], "pos_att_type": "c2p"})
    add("deberta-odd-norelative", "deberta_v2", "seq-cls",
        {**FAMILY_ODD["deberta-odd"][1], "relative_attention": False})
    add("xlm-roberta-odd-model-nopooler", "xlm_roberta", "model", FAMILY_ODD["xlm-roberta-odd"][1], pooler=False)
    add("albert-odd-groups-model-nopooler", "albert", "model", FAMILY_ODD["albert-odd-groups"][1], pooler=False)
    add("mpnet-odd-model-nopooler", "mpnet", "model", FAMILY_ODD["mpnet-odd"][1], pooler=False)
    add("mpnet-base-model-nopooler", "mpnet", "model", FAMILY_PRESETS["mpnet-base"][1], pooler=False,
        preset="mpnet-base")
    add("roberta-prelayernorm-odd-model-nopooler", "roberta_prelayernorm", "model",
        FAMILY_ODD["roberta-prelayernorm-odd"][1], pooler=False)
    add("xlm-roberta-xl-odd-model-nopooler", "xlm_roberta_xl", "model", FAMILY_ODD["xlm-roberta-xl-odd"][1],
        pooler=False)
    add("modernbert-odd-seq-cls-mean", "modernbert", "seq-cls", {**FAMILY_ODD["modernbert-odd"][1],
                                                                "classifier_pooling": "mean"})
    return out


def build(case: dict):
    import torch
    import transformers

    cfg = getattr(transformers, HF_CONFIG[case["family"]])(**case["config"])
    name = CLASS_NAMES.get((case["family"], case["head"]), HF_PREFIX[case["family"]] + HEAD_CLASSES[case["head"]])
    cls = getattr(transformers, name)
    with torch.device("meta"):
        if case["head"] == "model":
            model = cls(cfg, add_pooling_layer=case["pooler"]) if case["family"] in POOLER_ARG else cls(cfg)
        else:
            model = cls(cfg)
    return cfg, model


def labels_of(family: str, head: str, batch: int, seq: int, cfg) -> dict:
    """The labels that make each class compute its own loss (on the meta device: only shapes matter)."""
    import torch

    def ints(*shape: int, high: int = 2):
        return torch.zeros(*shape, dtype=torch.long, device="meta")

    if head in ("mlm", "causal-lm"):
        return {"labels": ints(batch, seq)}
    if head == "pretraining":
        extra = {"bert": {"next_sentence_label": ints(batch)}, "albert": {"sentence_order_label": ints(batch)}}
        return {"labels": ints(batch, seq), **extra.get(family, {})}
    if head in ("seq-cls", "nsp", "multiple-choice"):
        return {"labels": ints(batch)}
    if head == "token-cls":
        return {"labels": ints(batch, seq)}
    if head == "qa":
        return {"start_positions": ints(batch), "end_positions": ints(batch)}
    return {}


def flops_all(case: dict, cfg, model) -> dict | None:
    """FlopCounterMode's forward and training-step FLOPs (eager attention) at batch 2, sequence 64 (or the
    longest the position table allows), 2 choices for a multiple-choice class. None where HF's forward fails
    (a QA head with num_labels other than 2), or cannot run on the meta device (DeBERTa-v2 without
    ``norm_rel_ebd: layer_norm`` calls ``Tensor.item()``). HF's padding warning reads the ids, which meta
    tensors cannot give, so where it would, ``pad_token_id`` is set to None: the model has read it already."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if case["head"] == "qa" and cfg.num_labels != 2:
        return None
    P = cfg.max_position_embeddings
    pad = cfg.pad_token_id if case["family"] in ("roberta", "xlm_roberta", "camembert") else None
    seq = min(FLOP_SEQ, P - pad - 1 if pad is not None else P)
    choices = FLOP_CHOICES if case["head"] == "multiple-choice" else None
    shape = (FLOP_BATCH, choices, seq) if choices else (FLOP_BATCH, seq)
    ids = torch.zeros(*shape, dtype=torch.long, device="meta")
    model.config._attn_implementation = "eager"
    model.eval()
    for attempt in (0, 1):
        try:
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                model(input_ids=ids)
            break
        except (RuntimeError, AssertionError) as e:
            if attempt:  # not on the meta device (DeBERTa-v2's ConvLayer, norm_rel_ebd other than layer_norm)
                return None
            if "meta tensors" not in str(e):
                raise
            model.config.pad_token_id = None
    forward = counter.get_total_flops()
    model.train()
    labels = labels_of(case["family"], case["head"], FLOP_BATCH, seq, cfg)
    loss_of = "the class's own loss"
    try:
        with FlopCounterMode(display=False) as counter:
            out = model(input_ids=ids, **labels)
            if case["head"] == "model":
                pooled = getattr(out, "pooler_output", None)
                loss = (pooled if pooled is not None else out.last_hidden_state).sum()
            else:
                loss = out.loss
            loss.backward()
    except (RuntimeError, NotImplementedError) as e:  # DeBERTa's MLM loss selects the labelled rows (nonzero)
        if "meta" not in str(e):
            raise
        _, model = build(case)  # a fresh model: the failed step left autograd state behind
        model.config._attn_implementation = "eager"
        model.config.pad_token_id = None
        model.train()
        loss_of = "the sum of the logits (the class's own loss cannot run on the meta device)"
        try:
            with FlopCounterMode(display=False) as counter:
                out = model(input_ids=ids)
                next(getattr(out, k) for k in ("logits", "start_logits", "last_hidden_state")
                     if getattr(out, k, None) is not None).sum().backward()
        except (RuntimeError, AssertionError):  # a head whose output no loss reaches on meta: no record
            return None
    rec = {"batch": FLOP_BATCH, "seq": seq, "forward": forward, "training": counter.get_total_flops()}
    if loss_of != "the class's own loss":
        rec["loss"] = loss_of
    if choices:
        rec["choices"] = choices
def flops(case: dict) -> dict:
    """FlopCounterMode's FLOPs of a no-grad eval forward, and of a training step (train mode: forward, the head's
    own loss from labels, backward), eager attention, on the meta device (shapes only). The bare model's loss is
    the sum of its pooled output, or of its last hidden state without a pooler; a multiple-choice input is
    [B, CHOICES, S]."""
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    cfg = getattr(transformers, HF_CONFIG[case["family"]])(**case["config"])
    cls = getattr(transformers, HF_PREFIX[case["family"]] + HEAD_CLASSES[case["head"]])
    head = case["head"]
    extra = {"add_pooling_layer": False} if head == "model" and not case["pooler"] else {}
    with torch.device("meta"):
        model = cls._from_config(cfg, attn_implementation="eager", **extra)
    b, s = FLOP_BATCH, FLOP_SEQ
    mc = head == "multiple-choice"
    meta = {"device": "meta", "dtype": torch.long}
    labels = {"mlm": {"labels": torch.zeros(b, s, **meta)},
              "seq-cls": {"labels": torch.zeros(b, **meta)},
              "token-cls": {"labels": torch.zeros(b, s, **meta)},
              "qa": {"start_positions": torch.zeros(b, **meta), "end_positions": torch.zeros(b, **meta)},
              "multiple-choice": {"labels": torch.zeros(b, **meta)}}.get(head, {})
    ids = torch.zeros(*((b, CHOICES) if mc else (b,)), s, **meta)
    model.eval()
    with FlopCounterMode(display=False) as fwd, torch.no_grad():
        model(input_ids=ids)
    model.train()
    with FlopCounterMode(display=False) as step:
        out = model(input_ids=ids, **labels)
        if head == "model":
            pooled = getattr(out, "pooler_output", None)
            loss = (pooled if pooled is not None else out.last_hidden_state).sum()
        else:
            loss = out.loss
        loss.backward()
    rec = {"batch": b, "seq": s, "forward": fwd.get_total_flops(), "training": step.get_total_flops()}
    if mc:
        rec["choices"] = CHOICES
    return rec


def record(case: dict) -> dict:
    import torch
    import transformers

    cfg, model = build(case)
    sd = model.state_dict()
    ties = getattr(model, "_tied_weights_keys", None) or {}
    if not isinstance(ties, dict):
        ties = {}
    return {
        "case": case["case"],
        "family": case["family"],
        "head": case["head"],
        "pooler": case["pooler"],
        "preset": case["preset"],
        "model_class": type(model).__name__,
        "config": case["config"],
        "num_parameters": model.num_parameters(),
        "tied": sorted([k, v] for k, v in ties.items()) if cfg.tie_word_embeddings else [],
        "state_dict": [[k, list(v.shape)] for k, v in sd.items()],
        "flops": flops(case) if case["family"] in FLOP_FAMILIES else flops_all(case, cfg, model),
        "generated_by": {"transformers": transformers.__version__, "torch": torch.__version__},
    }


def dump(rec: dict) -> str:
    """One tensor per line: small diffs when transformers changes."""
    head = {k: v for k, v in rec.items() if k != "state_dict"}
    lines = ",\n".join("  " + json.dumps(t) for t in rec["state_dict"])
    return json.dumps(head, indent=1)[:-2] + ',\n "state_dict": [\n' + lines + "\n ]\n}\n"


def saved_config_json(path: Path) -> None:
    """The config.json of a saved ModernBertForMaskedLM (modernbert-odd), as save_pretrained writes it."""
    import tempfile

    import torch
    import transformers

    cfg = transformers.ModernBertConfig(**FAMILY_ODD["modernbert-odd"][1])
    with torch.device("meta"):
        model = transformers.ModernBertForMaskedLM(cfg)
    model.config.architectures = ["ModernBertForMaskedLM"]
    with tempfile.TemporaryDirectory() as tmp:
        model.config.save_pretrained(tmp)
        path.write_text((Path(tmp) / "config.json").read_text())
    print(f"wrote {path.name}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed fixtures; write nothing")
    ap.add_argument("--only", help="only the cases whose family is this one (others are left as they are)")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    bad = 0
    wanted = set()
    for case in cases():
        if args.only and case["family"] != args.only:
            wanted.add(f"{case['case']}.json")
            continue
        rec = record(case)
        path = OUT / f"{case['case']}.json"
        wanted.add(path.name)
        if args.check:
            old = json.loads(path.read_text()) if path.exists() else None
            strip = lambda d: {k: v for k, v in d.items() if k != "generated_by"}  # noqa: E731
            if old is None or strip(old) != strip(rec):
                bad += 1
                print(f"differs: {path.name}")
        else:
            path.write_text(dump(rec))
            print(f"wrote {path.name}  ({len(rec['state_dict'])} tensors, {rec['num_parameters']:,} parameters)")
    if not args.check and args.only in (None, "modernbert"):
        saved_config_json(OUT.parent / "modernbert-odd-mlm-config.json")
    stale = sorted(p.name for p in OUT.glob("*.json") if p.name not in wanted)
    for name in stale:
        if args.check:
            bad += 1
            print(f"stale: {name}")
        else:
            (OUT / name).unlink()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
