"""Exact live-tensor accounting of HF BERT-family models on the CPU, as a stand-in for torch.cuda.max_memory_allocated.

No GPU is needed, and nothing is read from the C allocator (scripts/measure_cpu_memory.py reads glibc's
``mallinfo2``, which also sees Python objects, allocator slack and kernel scratch). Here every tensor storage
is accounted for by name, through a ``TorchDispatchMode``:

- After every aten op (forward, loss, backward and optimizer step alike: all of them run inside the mode,
  and the autograd engine runs CPU backward ops on the calling thread, where the mode is active) the
  storages of all the op's output tensors are recorded, keyed by ``untyped_storage().data_ptr()``, with
  their size ``untyped_storage().nbytes()`` and a ``StorageWeakRef`` (torch.multiprocessing.reductions)
  that tells when the storage has been freed. A view shares its base's storage, so it adds nothing.
- Before counting at each op, storages whose weak reference has expired are swept out (so an address the
  CPU allocator hands out again is never counted twice).
- Live bytes = baseline + the sum over live tracked storages of ``cuda_round(nbytes)``; ``cuda_round`` is
  ``bertcalc.memsim.alloc`` (the CUDA caching allocator's 512-byte rounding and its 2 MiB segments above
  10 MiB), copied below so that this script does not import bertcalc: the measurement stays independent of
  the model it checks. Zero-size storages are ignored. The peak is the maximum over ops.
- The baseline of a measured training step is the parameters (unique storages, so a tied decoder counts
  once), the buffers the model holds (``position_ids``, ``token_type_ids``: int64, non-persistent) and the
  optimizer states (``exp_avg``, ``exp_avg_sq`` and the ``step`` tensors), each rounded; the gradients are
  None at the start of the step (``zero_grad(set_to_none=True)``). For inference it is the parameters and
  buffers. Baseline storages are registered in the tracker first, so an op returning a view of a parameter
  (``weight.t()``) or updating an optimizer state in place is not counted again.
- Tensors made before the mode is entered (``input_ids``, labels) are not counted, as bertcalc does not
  count them; what the model makes from them (``token_type_ids`` gathered from the buffer...) is.
- Dropout is routed through ``torch.native_dropout``, which is what ATen's dropout runs on CUDA, so it
  saves a one-byte bool mask as on the GPU; with p == 0 (or in eval) it returns its input itself, as ATen's
  dropout does. A kernel's scratch space (mkldnn's, the float mask inside the CPU dropout kernel) is not an
  op's output and is not seen; on the GPU it would be cuBLAS workspace or not exist.

What is exact: the set of tensors autograd saves and every op allocates, in the order it allocates them,
with CUDA's rounding; that is the same code path on the CPU as on the GPU for fp32 eager attention. What
is not modelled: fragmentation and block reuse (max_memory_allocated does not see them either) and CUDA-
only code paths (sdpa kernels, autocast, the sorted embedding backward past 3072 indices, which is why
every case here has B·S ≤ 2048). The optimizer here is AdamW(foreach=False), whose step makes two
parameter-sized temporaries (``sqrt`` and the division); the GPU harness uses fused AdamW, which makes
none, so ``peak_fwd_bwd_bytes`` (the peak before ``opt.step()``) is recorded beside ``peak_bytes``.

Records (one JSON object per line, after a ``{"meta": ...}`` line): config, family, head (bertcalc's names:
model, mlm, pretraining, seq-cls, token-cls, qa, multiple-choice), choices (multiple choice only: the input is
[batch, choices, seq]), mode (train_fp32 | infer_fp32), attn, batch, seq, hf_config (the kwargs given to the HF
config class, num_labels included), pooler, params, weights_bytes, peak_bytes; for training steady_bytes,
saved_activations_bytes (live after forward and loss minus before), after_backward_bytes, peak_fwd_bwd_bytes,
peak_step_bytes. peak_op, peak_phase and peak_top (the largest live storages at the peak: creating op, phase,
shape, dtype, rounded bytes) say what the peak was made of; saved_by_op sums the saved activations by the op
that made them. All byte counts are above zero, i.e. they include the weights, as the GPU records do. The LoRA /
freeze sweep (``--lora``) adds adapter_name, adapter (``{"lora": LoraConfig kwargs}`` for ``peft.get_peft_model``, or
``{"freeze": [...], "train": [...]}``, bertcalc's groups, applied with ``requires_grad_(False)`` by the HF names
``make_peft_fixtures.frozen`` gives them) and trainable_params; params is then PEFT's "all params" (base + adapter).

    python scripts/measure_cpu_storage.py OUT.jsonl                   # the whole sweep (a few minutes)
    python scripts/measure_cpu_storage.py OUT.jsonl --only albert --quick
    python scripts/measure_cpu_storage.py tests/fixtures/memory/cpu_storage_fp32_eager_mpnet.jsonl --only mpnet
    python scripts/measure_cpu_storage.py tests/fixtures/memory/cpu_storage_fp32_eager_roberta_prelayernorm.jsonl \
        --only roberta_prelayernorm
    python scripts/measure_cpu_storage.py tests/fixtures/memory/cpu_storage_fp32_eager_xlm_roberta_xl.jsonl \
        --only xlm_roberta_xl
    python scripts/measure_cpu_storage.py tests/fixtures/memory/cpu_storage_fp32_eager_lora.jsonl --lora
    python scripts/measure_cpu_storage.py --selftest                  # the hand-computed nn.Linear check
    python scripts/measure_cpu_storage.py tests/fixtures/memory/cpu_storage_fp32_eager_heads.jsonl --heads

The self-test: ``nn.Linear(1000, 3000)`` on a 64 × 1000 input made outside the mode. The weight is
12,000,000 bytes, which CUDA rounds to 6 × 2 MiB = 12,582,912 (segment slack 582,912 < 1 MiB); the bias
12,000 -> 12,288. The forward makes y = addmm(...) [64, 3000]: 768,000 bytes (a multiple of 512) and
loss = y.sum(): 4 -> 512. The backward makes the seed ones_like(loss) (512), the weight gradient (12,582,912)
and the bias gradient (12,288); y and the loss stay alive. So the peak is 2 × 12,582,912 + 2 × 12,288 +
768,000 + 2 × 512 = 25,959,424 bytes, and after ``del y, loss`` and ``grad = None`` only the weights are left.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import Any

import torch
import transformers
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

MiB = 1 << 20


def cuda_round(nbytes: int) -> int:
    """Bytes the CUDA caching allocator reports for one tensor of ``nbytes``: a copy of bertcalc.memsim.alloc.

    Requests are rounded up to 512 bytes. A request of 10 MiB or more gets a segment rounded up to 2 MiB, and
    the block is not split when less than 1 MiB would be left over, so the whole rounded size is counted.
    """
    if nbytes <= 0:
        return 0
    n = -(-nbytes // 512) * 512
    if n >= 10 * MiB:
        seg = -(-n // (2 * MiB)) * (2 * MiB)
        if seg - n <= MiB:
            return seg
    return n


_expired = torch.UntypedStorage._expired  # what StorageWeakRef.expired() calls, without two Python frames


class Entry:
    __slots__ = ("cdata", "dtype", "nbytes", "op", "phase", "ref", "shape")

    def __init__(self, storage, op: str, phase: str, shape: tuple, dtype: str) -> None:
        self.ref = StorageWeakRef(storage)  # frees the weak reference when the entry goes
        self.cdata = self.ref.cdata
        self.nbytes = cuda_round(storage.nbytes())
        self.op, self.phase, self.shape, self.dtype = op, phase, shape, dtype

    def describe(self) -> list:
        return [self.op, self.phase, list(self.shape), self.dtype, self.nbytes]


class StorageTracker(TorchDispatchMode):
    """Every live tensor storage, by data pointer; live bytes and their maximum, after every aten op."""

    TOP = 12

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[int, Entry] = {}
        self.fixed: dict[int, Entry] = {}  # the baseline: weights, buffers, optimizer states (never freed mid-step)
        self.live = 0
        self.peak = 0
        self.peak_op = ""
        self.peak_phase = ""
        self.peak_snapshot: list[Entry] = []
        self.phase = "baseline"

    # the ledger
    def _sweep(self) -> None:
        dead = [k for k, e in self.entries.items() if _expired(e.cdata)]
        for k in dead:
            self.live -= self.entries.pop(k).nbytes

    def add_baseline(self, t: torch.Tensor) -> None:
        """A storage that outlives the step (a parameter, a buffer, an optimizer state): counted, never swept."""
        st = t.untyped_storage()
        if st.nbytes() and st.data_ptr() not in self.fixed:
            e = Entry(st, "baseline", "baseline", tuple(t.shape), str(t.dtype).removeprefix("torch."))
            self.fixed[st.data_ptr()] = e
            self.live += e.nbytes

    def add(self, t: torch.Tensor, op: str = "baseline", fresh: bool = True) -> None:
        """Record ``t``'s storage. An output that aliases one of the op's inputs (a view, an in-place or out=
        result) is not a new allocation: it only updates the size of a tracked storage, and one that is not
        tracked (a view of input_ids, made before the mode) stays uncounted."""
        st = t.untyped_storage()
        if st.nbytes() == 0:
            return
        key = st.data_ptr()
        if key in self.fixed:  # a view of a parameter, an optimizer state updated in place
            return
        e = self.entries.get(key)
        if e is not None and not _expired(e.cdata):
            n = cuda_round(st.nbytes())  # resized in place (an out= op): keep the size current
            self.live += n - e.nbytes
            e.nbytes = n
            return
        if not fresh:
            return
        if e is not None:
            self.live -= e.nbytes
        e = Entry(st, op, self.phase, tuple(t.shape), str(t.dtype).removeprefix("torch."))
        self.entries[key] = e
        self.live += e.nbytes

    def count(self, op: str) -> int:
        """Live bytes after ``op`` (the caller swept before recording its outputs); a new maximum is kept."""
        if self.live > self.peak:
            self.peak, self.peak_op, self.peak_phase = self.live, op, self.phase
            self.peak_snapshot = list(self.entries.values())
        return self.live

    def reset_peak(self) -> None:
        self._sweep()
        self.peak, self.peak_op, self.peak_phase = self.live, "", self.phase
        self.peak_snapshot = list(self.entries.values())

    def now(self) -> int:
        self._sweep()
        return self.live

    def top(self, n: int | None = None) -> list[list]:
        """The largest storages live at the peak, the baseline (weights, optimizer states) left out."""
        es = [e for e in self.peak_snapshot if e.phase != "baseline"]
        return [e.describe() for e in sorted(es, key=lambda e: -e.nbytes)[: n or self.TOP]]

    def peak_by_phase(self) -> dict[str, int]:
        """Bytes live at the peak, by the phase that made them (baseline, forward, backward, step)."""
        out: dict[str, int] = {"baseline": sum(e.nbytes for e in self.fixed.values())}
        for e in self.peak_snapshot:
            out[e.phase] = out.get(e.phase, 0) + e.nbytes
        return out

    def by_op(self, phases: tuple[str, ...]) -> dict[str, int]:
        """Live bytes right now, summed by the op that made them, for the storages made in ``phases``."""
        self._sweep()
        out: dict[str, int] = {}
        for e in self.entries.values():
            if e.phase in phases:
                out[e.op] = out.get(e.op, 0) + e.nbytes
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    # the mode
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self._sweep()
        name = func.__name__ if hasattr(func, "__name__") else str(func)
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.add(t, name, fresh=t.untyped_storage().data_ptr() not in inputs)
        self.count(name)
        return out


def _cuda_like_dropout(input, p=0.5, training=True, inplace=False):
    """What ATen's dropout does on CUDA: input itself when p == 0 or not training, else native_dropout."""
    if not training or p == 0:
        return input
    return torch.native_dropout(input, p, True)[0]


torch.nn.functional.dropout = _cuda_like_dropout

FAMILY = {"bert": ("BertConfig", "Bert"), "roberta": ("RobertaConfig", "Roberta"),
          "distilbert": ("DistilBertConfig", "DistilBert"), "albert": ("AlbertConfig", "Albert"),
          "electra": ("ElectraConfig", "Electra"), "xlm_roberta": ("XLMRobertaConfig", "XLMRoberta"),
          "camembert": ("CamembertConfig", "Camembert"), "modernbert": ("ModernBertConfig", "ModernBert"),
          "mpnet": ("MPNetConfig", "MPNet"),
          "roberta_prelayernorm": ("RobertaPreLayerNormConfig", "RobertaPreLayerNorm"),
          "xlm_roberta_xl": ("XLMRobertaXLConfig", "XLMRobertaXL"),
          "deberta_v2": ("DebertaV2Config", "DebertaV2")}
HEAD_CLASS = {"model": "Model", "mlm": "ForMaskedLM", "pretraining": "ForPreTraining",
              "seq-cls": "ForSequenceClassification", "token-cls": "ForTokenClassification",
              "qa": "ForQuestionAnswering", "multiple-choice": "ForMultipleChoice", "causal-lm": "ForCausalLM",
              "nsp": "ForNextSentencePrediction"}
CLASS_NAMES = {("bert", "causal-lm"): "BertLMHeadModel"}  # where HF's name is not prefix + suffix
CHOICES = 2  # a multiple-choice input is [B, CHOICES, S]
HEADS = {"bert": ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa"),
         "roberta": ("model", "mlm", "seq-cls", "token-cls", "qa"),
         "distilbert": ("model", "mlm", "seq-cls", "token-cls", "qa"),
         "albert": ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa"),
         "electra": ("model", "mlm", "pretraining", "seq-cls", "token-cls", "qa"),
         "modernbert": ("model", "mlm", "seq-cls", "token-cls", "qa"),
         "mpnet": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
         "roberta_prelayernorm": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
         "xlm_roberta_xl": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice"),
         "deberta_v2": ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice")}
NOPOOLER = ("bert", "roberta", "albert", "xlm_roberta", "camembert", "mpnet", "roberta_prelayernorm",
            "xlm_roberta_xl")  # bare models taking add_pooling_layer
ROBERTA_HEADS = ("model", "mlm", "seq-cls", "token-cls", "qa", "multiple-choice", "causal-lm")
# the heads sweep (--heads, cpu_storage_fp32_eager_heads.jsonl): the five families' new heads, and every head of
# XLM-RoBERTa and CamemBERT
NEW_HEADS = {"bert": ("multiple-choice", "causal-lm", "nsp"), "roberta": ("multiple-choice", "causal-lm"),
             "distilbert": ("multiple-choice",), "albert": ("multiple-choice",),
             "electra": ("multiple-choice", "causal-lm"), "xlm_roberta": ROBERTA_HEADS, "camembert": ROBERTA_HEADS}
HEADS_SHAPES = [(4, 64), (2, 200)]  # the first sweep's shapes

SHAPES = [(4, 64), (2, 200)]
FAMILY_SHAPES = {"deberta_v2": [(4, 64), (2, 100)]}  # S² and S·2·span terms: a smaller sweep
QUICK_SHAPES = [(2, 64)]

SWEEP: dict[str, tuple[str, dict[str, Any]]] = {  # name: (family, HF config kwargs)
    "bert-small": ("bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512)),
    "bert-odd": ("bert", dict(num_hidden_layers=3, hidden_size=192, num_attention_heads=3, intermediate_size=500,
                              vocab_size=5000)),
    "bert-small-p0": ("bert", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                                   intermediate_size=512, hidden_dropout_prob=0.0,
                                   attention_probs_dropout_prob=0.0)),
    # a vocabulary so small that the encoder backward, not the [B·S, V] loss, is the training peak: what the
    # pretraining head's pooler and NSP branch add to the backward shows there
    "bert-tinyvocab": ("bert", dict(num_hidden_layers=2, hidden_size=384, num_attention_heads=6, intermediate_size=500,
                                    vocab_size=64)),
    "roberta-small": ("roberta", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                                      intermediate_size=512, max_position_embeddings=514, type_vocab_size=1)),
    "roberta-odd": ("roberta", dict(num_hidden_layers=3, hidden_size=150, num_attention_heads=5,
                                    intermediate_size=400, vocab_size=3001, max_position_embeddings=514,
                                    type_vocab_size=1)),
    "distilbert-small": ("distilbert", dict(n_layers=2, dim=128, n_heads=2, hidden_dim=512)),
    "distilbert-odd": ("distilbert", dict(n_layers=3, dim=150, n_heads=5, hidden_dim=400, vocab_size=3001)),
    "albert-small": ("albert", dict(num_hidden_layers=3, hidden_size=256, embedding_size=64, num_attention_heads=4,
                                    intermediate_size=1024)),
    "albert-odd": ("albert", dict(num_hidden_layers=3, hidden_size=150, embedding_size=48, num_attention_heads=5,
                                  intermediate_size=400, vocab_size=3001, hidden_dropout_prob=0.1,
                                  attention_probs_dropout_prob=0.1)),
    "albert-groups": ("albert", dict(num_hidden_layers=5, num_hidden_groups=2, inner_group_num=2, hidden_size=128,
                                     embedding_size=64, num_attention_heads=2, intermediate_size=512,
                                     vocab_size=3001)),
    "electra-small": ("electra", dict(num_hidden_layers=2, hidden_size=256, embedding_size=128,
                                      num_attention_heads=4, intermediate_size=1024)),
    "electra-odd": ("electra", dict(num_hidden_layers=3, hidden_size=150, embedding_size=150, num_attention_heads=5,
                                    intermediate_size=400, vocab_size=3001)),
    # ModernBERT: layer 0 apart, local layers with a window shorter than the sequence, rotary tables, GLU
    "modernbert-small": ("modernbert", dict(num_hidden_layers=4, hidden_size=128, num_attention_heads=2,
                                            intermediate_size=192, vocab_size=3001, pad_token_id=0,
                                            local_attention=32)),
    # odd sizes (H = 90, 5 heads of 18), biases everywhere, every dropout on, mean pooling, 2-layer period
    "modernbert-odd": ("modernbert", dict(num_hidden_layers=3, hidden_size=90, num_attention_heads=5,
                                          intermediate_size=130, vocab_size=2001, pad_token_id=0, local_attention=16,
                                          global_attn_every_n_layers=2, attention_bias=True, mlp_bias=True,
                                          norm_bias=True, classifier_bias=True, embedding_dropout=0.1,
                                          attention_dropout=0.1, mlp_dropout=0.1, classifier_dropout=0.1,
                                          classifier_pooling="mean")),
    # a vocabulary so small that the encoder backward, not the [B·S, V] loss, is the training peak
    "modernbert-tinyvocab": ("modernbert", dict(num_hidden_layers=3, hidden_size=256, num_attention_heads=4,
                                                intermediate_size=384, vocab_size=64, pad_token_id=0,
                                                local_attention=64, decoder_bias=False)),
    "mpnet-small": ("mpnet", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512,
                                  max_position_embeddings=514)),
    "mpnet-odd": ("mpnet", dict(num_hidden_layers=3, hidden_size=150, num_attention_heads=5, intermediate_size=400,
                                vocab_size=3001, max_position_embeddings=514)),
    "rpln-small": ("roberta_prelayernorm", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                                                intermediate_size=512, max_position_embeddings=514, type_vocab_size=1)),
    "rpln-odd": ("roberta_prelayernorm", dict(num_hidden_layers=3, hidden_size=150, num_attention_heads=5,
                                              intermediate_size=400, vocab_size=3001, max_position_embeddings=514,
                                              type_vocab_size=1)),
    "xlmr-xl-small": ("xlm_roberta_xl", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                                             intermediate_size=512, vocab_size=30522)),
    "xlmr-xl-odd": ("xlm_roberta_xl", dict(num_hidden_layers=3, hidden_size=150, num_attention_heads=5,
                                           intermediate_size=400, vocab_size=3001)),
    # DeBERTa-v3's layout (shared keys, both terms, bucketed relative table, no absolute positions), small
    "deberta-small": ("deberta_v2", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                                         intermediate_size=512, vocab_size=5000, relative_attention=True,
                                         position_buckets=32, norm_rel_ebd="layer_norm", share_att_key=True,
                                         pos_att_type="p2c|c2p", position_biased_input=False, type_vocab_size=0)),
    # odd: H 150 over 5 heads, own pos_key_proj/pos_query_proj, unbucketed span, absolute positions and token
    # types, no relative LayerNorm, embedding_size != H (embed_proj)
    "deberta-odd": ("deberta_v2", dict(num_hidden_layers=3, hidden_size=150, num_attention_heads=5,
                                       intermediate_size=400, vocab_size=3001, relative_attention=True,
                                       max_relative_positions=24, share_att_key=False, pos_att_type=["c2p", "p2c"],
                                       position_biased_input=True, type_vocab_size=2, max_position_embeddings=128,
                                       embedding_size=96)),
    # c2p only; small enough that the training peak is in the forward's last layer, not in the backward
    "deberta-c2p": ("deberta_v2", dict(num_hidden_layers=2, hidden_size=96, num_attention_heads=3,
                                       intermediate_size=200, vocab_size=1000, relative_attention=True,
                                       position_buckets=16, norm_rel_ebd="layer_norm", share_att_key=True,
                                       pos_att_type="c2p", position_biased_input=False, type_vocab_size=0)),
    # the same without any dropout: the relative table itself is what every layer's projections keep
    "deberta-c2p-p0": ("deberta_v2", dict(num_hidden_layers=2, hidden_size=96, num_attention_heads=3,
                                          intermediate_size=200, vocab_size=1000, relative_attention=True,
                                          position_buckets=16, norm_rel_ebd="layer_norm", share_att_key=True,
                                          pos_att_type="c2p", position_biased_input=False, type_vocab_size=0,
                                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)),
}
HEADS_SWEEP: dict[str, tuple[str, dict[str, Any]]] = {  # the heads sweep's configs
    "bert-odd": SWEEP["bert-odd"],
    "bert-tinyvocab": SWEEP["bert-tinyvocab"],
    "roberta-odd": SWEEP["roberta-odd"],
    "distilbert-odd": SWEEP["distilbert-odd"],
    "albert-odd": SWEEP["albert-odd"],
    "electra-small": SWEEP["electra-small"],
    "electra-odd": SWEEP["electra-odd"],
    "xlm-roberta-small": ("xlm_roberta", dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2,
                                              intermediate_size=512, vocab_size=5000, max_position_embeddings=514,
                                              type_vocab_size=1)),
    "xlm-roberta-odd": ("xlm_roberta", dict(num_hidden_layers=3, hidden_size=150, num_attention_heads=5,
                                            intermediate_size=400, vocab_size=3001, max_position_embeddings=514,
                                            type_vocab_size=1)),
    "camembert-odd": ("camembert", dict(num_hidden_layers=2, hidden_size=105, num_attention_heads=7,
                                        intermediate_size=300, vocab_size=2001, max_position_embeddings=514,
                                        type_vocab_size=1)),
}
# decoders (is_decoder: a causal mask; use_cache: a no-grad forward keeps K and V), for the causal-LM classes;
# the tiny vocabularies put the inference peak inside the encoder, where the mask and the cache are live
DECODERS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert-odd-decoder": ("bert", {**SWEEP["bert-odd"][1], "is_decoder": True}),
    "bert-tinyvocab-decoder": ("bert", {**SWEEP["bert-tinyvocab"][1], "is_decoder": True}),
    "bert-tinyvocab-decoder-nocache": ("bert", {**SWEEP["bert-tinyvocab"][1], "is_decoder": True,
                                                "use_cache": False}),
    "roberta-odd-decoder": ("roberta", {**SWEEP["roberta-odd"][1], "is_decoder": True}),
    "electra-odd-decoder": ("electra", {**SWEEP["electra-odd"][1], "vocab_size": 50, "is_decoder": True}),
    "xlm-roberta-odd-decoder": ("xlm_roberta", {**HEADS_SWEEP["xlm-roberta-odd"][1], "is_decoder": True}),
    "camembert-odd-decoder": ("camembert", {**HEADS_SWEEP["camembert-odd"][1], "vocab_size": 40,
                                            "is_decoder": True}),
}
HEADS_SWEEP.update(DECODERS)


def build_model(family: str, head: str, cfg_kw: dict, pooler: bool = True):
    cfg_cls, prefix = FAMILY[family]
    cfg = getattr(transformers, cfg_cls)(**cfg_kw, num_labels=2)
    cls = getattr(transformers, CLASS_NAMES.get((family, head), prefix + HEAD_CLASS[head]))
    extra = {} if pooler else {"add_pooling_layer": False}
    return cfg, cls._from_config(cfg, attn_implementation="eager", **extra)


def make_inputs(family: str, head: str, cfg, batch: int, seq: int) -> tuple[torch.Tensor, dict]:
    """input_ids in [1, vocab) ([batch, CHOICES, seq] for a multiple-choice class), and the labels that make
    the HF class compute its own loss."""
    ids = torch.randint(1, cfg.vocab_size, (batch, CHOICES, seq) if head == "multiple-choice" else (batch, seq))
    if head in ("mlm", "causal-lm"):
        labels = {"labels": torch.randint(0, cfg.vocab_size, (batch, seq))}
    elif head == "pretraining" and family == "bert":
        labels = {"labels": torch.randint(0, cfg.vocab_size, (batch, seq)),
                  "next_sentence_label": torch.randint(0, 2, (batch,))}
    elif head == "pretraining" and family == "albert":
        labels = {"labels": torch.randint(0, cfg.vocab_size, (batch, seq)),
                  "sentence_order_label": torch.randint(0, 2, (batch,))}
    elif head == "pretraining" and family == "electra":
        labels = {"labels": torch.randint(0, 2, (batch, seq))}
    elif head in ("seq-cls", "nsp"):
        labels = {"labels": torch.randint(0, 2, (batch,))}
    elif head == "multiple-choice":
        labels = {"labels": torch.randint(0, CHOICES, (batch,))}
    elif head == "token-cls":
        labels = {"labels": torch.randint(0, 2, (batch, seq))}
    elif head == "qa":
        labels = {"start_positions": torch.randint(0, seq, (batch,)), "end_positions": torch.randint(0, seq, (batch,))}
    else:
        labels = {}
    return ids, labels


def _unique(tensors) -> list[torch.Tensor]:
    seen: set[int] = set()
    out = []
    for t in tensors:
        st = t.untyped_storage()
        if st.nbytes() and st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            out.append(t)
    return out


# the LoRA / freeze sweep (--lora, cpu_storage_fp32_eager_lora.jsonl): real peft (get_peft_model with a
# LoraConfig) and requires_grad_(False) freezes, on one small config per family. The adapters: peft's default
# targets (query+value, or the family's own names) with lora_dropout 0.1; all-linear without dropout; all-linear
# with dropout and bias="all"; explicit targets with a LayerNorm in modules_to_save. The freezes: the embeddings and
# layer 0; the head only. seq-cls gets PEFT's SEQ_CLS task (its classifier in modules_to_save, automatically).
LORA_CONFIGS = {
    "bert-small": SWEEP["bert-small"], "roberta-small": SWEEP["roberta-small"],
    "distilbert-small": SWEEP["distilbert-small"], "albert-small": SWEEP["albert-small"],
    "deberta-small": SWEEP["deberta-small"], "modernbert-small": SWEEP["modernbert-small"],
    "bert-odd": SWEEP["bert-odd"],
}
LORA_HEADS = ("seq-cls", "mlm", "model")
LORA_SHAPES = [(4, 64), (2, 100)]
LORA_TARGETS = {"bert": ["query", "value"], "roberta": ["query", "value"], "distilbert": ["q_lin", "v_lin"],
                "albert": ["query", "value"], "deberta_v2": ["query_proj", "value_proj"],
                "modernbert": ["Wqkv"]}
LORA_NORM = {"distilbert": "output_layer_norm", "modernbert": "mlp_norm"}  # a LayerNorm per layer, by suffix


def lora_adapters(family: str, head: str) -> dict[str, dict]:
    """name -> the adapter as a record stores it: {"lora": LoraConfig kwargs} or {"freeze": [...], "train": [...]}
    (bertcalc's freeze groups; the HF names they cover are make_peft_fixtures.frozen's)."""
    task = {"seq-cls": "SEQ_CLS", "token-cls": "TOKEN_CLS", "qa": "QUESTION_ANS"}.get(head)
    t = LORA_TARGETS[family]
    base = dict(r=8, lora_alpha=16, task_type=task)
    out = {
        "lora-qv-dropout": {"lora": dict(base, target_modules=t, lora_dropout=0.1)},
        "lora-all-linear": {"lora": dict(base, r=4, target_modules="all-linear", lora_dropout=0.0)},
        "lora-all-linear-dropout-bias": {"lora": dict(base, r=4, target_modules="all-linear", lora_dropout=0.1,
                                                      bias="all")},
        "lora-qv-save-norm": {"lora": dict(base, target_modules=t, lora_dropout=0.0,
                                           modules_to_save=[LORA_NORM.get(family, "output.LayerNorm")])},
        "freeze-embeddings-layer0": {"freeze": ["embeddings", "layers=0-0"], "train": []},
    }
    if head != "model":
        out["train-head"] = {"freeze": [], "train": ["head"]}
    return out


def adapt(model, family: str, head: str, adapter: dict):
    """The model as peft wraps it, or with requires_grad_(False) on the frozen groups."""
    if "lora" in adapter:
        import peft

        return peft.get_peft_model(model, peft.LoraConfig(**adapter["lora"]))
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    from make_peft_fixtures import frozen

    prefix = model.base_model_prefix + "." if head != "model" else ""
    flags: dict[int, bool] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        flags[id(p)] = flags.get(id(p), True) and not frozen(n, prefix, adapter["freeze"], adapter["train"])
    for p in model.parameters():
        p.requires_grad_(flags[id(p)])
    return model


def one(name: str, family: str, cfg_kw: dict, head: str, mode: str, batch: int, seq: int,
        pooler: bool = True, adapter: dict | None = None, adapter_name: str = "") -> dict:
    torch.manual_seed(0)
    cfg, model = build_model(family, head, cfg_kw, pooler)
    if adapter is not None:
        model = adapt(model, family, head, adapter)
    base_model = getattr(model, model.base_model_prefix, model)
    has_pooler = getattr(base_model, "pooler", None) is not None
    rec: dict[str, Any] = dict(config=name, family=family, head=head, mode=mode, attn="eager", batch=batch, seq=seq,
                               hf_config={**cfg_kw, "num_labels": 2}, pooler=has_pooler, device="cpu",
                               method="storage")
    if head == "multiple-choice":
        rec["choices"] = CHOICES
    if adapter is not None:
        rec["adapter_name"], rec["adapter"] = adapter_name, adapter
        rec["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rec["params"] = sum(p.numel() for p in model.parameters())
    params = _unique(model.parameters())
    buffers = _unique(model.buffers())
    weights = sum(cuda_round(t.untyped_storage().nbytes()) for t in params + buffers)
    rec["weights_bytes"] = weights
    ids, labels = make_inputs(family, head, cfg, batch, seq)

    def fresh(extra: list[torch.Tensor] = ()) -> StorageTracker:
        gc.collect()  # cheap: main() froze the objects made by the imports
        tr = StorageTracker()
        for t in params + buffers + list(extra):
            tr.add_baseline(t)
        tr.reset_peak()
        return tr

    if mode == "infer_fp32":
        model.eval()
        with torch.no_grad():
            tr = fresh()
            assert tr.now() == weights
            with tr:
                tr.phase = "forward"
                out = model(input_ids=ids)
                del out
            rec["peak_bytes"] = tr.peak
            rec["end_bytes"] = tr.now()
    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=False)

        def loss_of(out) -> torch.Tensor:
            if head != "model":
                return out.loss
            if getattr(out, "pooler_output", None) is not None:
                return out.pooler_output.sum()
            return out.last_hidden_state.sum()

        def step(tr: StorageTracker | None) -> None:
            if tr is None:
                loss = loss_of(model(input_ids=ids, **labels))
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                return
            before = tr.now()
            with tr:
                tr.phase = "forward"
                loss = loss_of(model(input_ids=ids, **labels))
                rec["saved_activations_bytes"] = tr.now() - before
                rec["saved_by_op"] = tr.by_op(("forward",))
                tr.phase = "backward"
                loss.backward()
                rec["after_backward_bytes"] = tr.now()
                rec["peak_fwd_bwd_bytes"] = tr.peak
                rec["peak_fwd_bwd_op"], rec["peak_fwd_bwd_phase"] = tr.peak_op, tr.peak_phase
                rec["peak_fwd_bwd_top"] = tr.top()
                rec["peak_fwd_bwd_by_phase"] = tr.peak_by_phase()
                fb_peak = tr.peak
                tr.phase = "step"
                tr.reset_peak()
                opt.step()
                rec["peak_step_bytes"] = tr.peak
                opt.zero_grad(set_to_none=True)
                del loss
                rec["end_bytes"] = tr.now()
            rec["peak_bytes"] = max(fb_peak, rec["peak_step_bytes"])

        step(None)  # warm-up: creates the optimizer state
        states = [t for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
        states = _unique(states)
        tr = fresh(states)
        rec["steady_bytes"] = tr.now()
        assert rec["steady_bytes"] == weights + sum(cuda_round(t.untyped_storage().nbytes()) for t in states)
        step(tr)
        opt = None
    if mode == "infer_fp32":
        rec["peak_op"], rec["peak_phase"], rec["peak_top"] = tr.peak_op, tr.peak_phase, tr.top()
        rec["peak_by_phase"] = tr.peak_by_phase()
    model = None
    return rec


def selftest() -> int:
    """The hand-computed nn.Linear case of the module docstring."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(1000, 3000)
    x = torch.randn(64, 1000)
    w, b = cuda_round(3000 * 1000 * 4), cuda_round(3000 * 4)
    assert (w, b) == (12_582_912, 12_288), (w, b)
    tr = StorageTracker()
    for p in lin.parameters():
        tr.add_baseline(p)
    tr.reset_peak()
    assert tr.now() == w + b
    with tr:
        y = lin(x)
        loss = y.sum()
        fwd = tr.now()
        loss.backward()
        peak = tr.peak
        del y, loss
        lin.weight.grad = lin.bias.grad = None
        end = tr.now()
    expected_fwd = w + b + 768_000 + 512
    expected_peak = 2 * w + 2 * b + 768_000 + 2 * 512
    print(f"selftest: after forward {fwd:,} (expected {expected_fwd:,}), peak {peak:,} (expected "
          f"{expected_peak:,}), end {end:,} (expected {w + b:,})")
    ok = (fwd, peak, end) == (expected_fwd, expected_peak, w + b)
    # dropout keeps a one-byte mask; p == 0 returns the input itself
    a = torch.randn(1000, 512, requires_grad=True)
    tr = StorageTracker()
    tr.add_baseline(a)
    with tr:
        d = torch.nn.functional.dropout(a, 0.1, True)
        masked = tr.now()
        same = torch.nn.functional.dropout(a, 0.0, True)
    ok &= masked == cuda_round(1000 * 512 * 4) * 2 + cuda_round(1000 * 512) and same is a
    del d
    print("selftest:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def lora_cases(only: str | None):
    for name, (family, cfg) in LORA_CONFIGS.items():
        if only and family != only:
            continue
        for head in LORA_HEADS:
            for aname, adapter in lora_adapters(family, head).items():
                for b, s in LORA_SHAPES:
                    yield name, family, cfg, head, "train_fp32", b, s, True, adapter, aname


def cases(only: str | None, quick: bool, heads: bool = False):
    for name, (family, cfg) in (HEADS_SWEEP if heads else SWEEP).items():
        if only and family != only:
            continue
        if quick and not name.endswith(("-small", "-groups")):
            continue
        shapes = QUICK_SHAPES if quick else HEADS_SHAPES if heads else FAMILY_SHAPES.get(family, SHAPES)
        for head in ("causal-lm",) if name in DECODERS else (NEW_HEADS if heads else HEADS).get(family, ()):
            variants = [True, False] if head == "model" and family in NOPOOLER else [True]
            for pooler in variants:
                for mode in ("train_fp32", "infer_fp32"):
                    for b, s in shapes:
                        yield name, family, cfg, head, mode, b, s, pooler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", help="output JSONL")
    ap.add_argument("--only", choices=sorted(FAMILY), help="one family")
    ap.add_argument("--quick", action="store_true", help="the -small configs (and albert-groups) at one shape")
    ap.add_argument("--selftest", action="store_true", help="the hand-computed nn.Linear check")
    ap.add_argument("--heads", action="store_true", help="the heads sweep: the five families' multiple-choice, "
                    "causal-lm and nsp classes, and every XLM-RoBERTa and CamemBERT class")
    ap.add_argument("--lora", action="store_true", help="the LoRA / freeze sweep (peft adapters, requires_grad "
                    "freezes): cpu_storage_fp32_eager_lora.jsonl")
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest()
    if not args.out:
        ap.error("an output path is needed (or --selftest)")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    gc.collect()
    gc.freeze()  # the modules and classes stay; later collections only walk what each case makes
    t0 = time.time()
    with open(args.out, "w") as fh:
        meta = {"torch": torch.__version__, "transformers": transformers.__version__, "device": "cpu",
                "method": "storage: live tensor storages through a TorchDispatchMode, CUDA-rounded",
                "optimizer": "AdamW(foreach=False)", "dropout": "native_dropout (bool mask), p=0 returns input",
                "date": time.strftime("%Y-%m-%d")}
        fh.write(json.dumps({"meta": meta}) + "\n")
        todo = (lora_cases(args.only) if args.lora else
                ((*c, None, "") for c in cases(args.only, args.quick, args.heads)))
        for name, family, cfg, head, mode, b, s, pooler, adapter, aname in todo:
            try:
                rec = one(name, family, cfg, head, mode, b, s, pooler, adapter, aname)
            except (TypeError, ValueError) as exc:  # a config peft refuses (bertcalc refuses it too): no record
                if adapter is None:
                    raise
                print(f"{name:17} {head:11} {aname}: peft refuses it: {type(exc).__name__}: {str(exc)[:100]}")
                continue
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            print(f"{name:17} {head:11} {aname or ('' if pooler else 'nopooler'):8} {mode:10} {b}x{s:<4} "
                  f"{rec['peak_bytes'] / MiB:9.2f} MiB  {time.time() - t0:6.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
