"""GPU memory of a training step or an inference pass, from the tensor list and the activation shapes.

What is modelled is what ``torch.cuda.max_memory_allocated()`` sees: every tensor PyTorch allocates, rounded
as the CUDA caching allocator rounds blocks. The CUDA context (several hundred MiB, outside the allocator)
and fragmentation (reserved but unallocated memory) are not counted.

Terms, each derived from shapes:

- **weights**: every unique parameter, plus the integer index buffers (``position_ids``...).
- **gradients**: one per parameter, same dtype, alive from the backward to ``zero_grad(set_to_none=True)``.
- **optimizer states**: per optimizer, from the parameter shapes (Adafactor's factored moments included).
- **saved activations**: what autograd keeps for the backward, op by op in HF's BertLayer: the inputs of
  each Linear (in bf16, cast once per Linear, under autocast), the matmul operand copies of eager attention,
  the softmax output and the dropout masks (one byte per element), LayerNorm inputs and statistics, GELU
  inputs; sdpa keeps q, k, v, its output and a log-sum-exp instead of the ``[B, A, S, S]`` probabilities.
- **transient peak**: the backward is replayed allocation by allocation (:class:`Sim`) through the loss,
  the head, one layer (the others repeat it), and the embeddings; its highest point over the saved set.

Every byte count is an integer. Nothing here is fitted to measurements; ``docs/memory.md`` compares the
predictions with peaks measured on an H100 and on the CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .config import ModelConfig
from .errors import UsageError
from .model import Architecture, ModelReport, identify

Mode = Literal["train", "infer"]
Precision = Literal["fp32", "fp16", "bf16", "amp-bf16", "amp-fp16"]
Optimizer = Literal["adamw", "adam", "sgd", "sgd-momentum", "adafactor", "adamw-8bit"]
Attention = Literal["eager", "sdpa"]

PRECISIONS = ("fp32", "fp16", "bf16", "amp-bf16", "amp-fp16")
OPTIMIZERS = ("adamw", "adam", "sgd", "sgd-momentum", "adafactor", "adamw-8bit")
ATTENTIONS = ("eager", "sdpa")
MODES = ("train", "infer")

MiB = 1 << 20


def alloc(nbytes: int) -> int:
    """Bytes the CUDA caching allocator reports for one tensor of ``nbytes``.

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


@dataclass(frozen=True)
class Options:
    mode: Mode = "train"
    precision: Precision = "fp32"
    optimizer: Optimizer = "adamw"
    attention: Attention = "eager"
    grad_checkpointing: bool = False
    batch: int = 8
    seq: int = 128

    @property
    def amp(self) -> bool:
        return self.precision.startswith("amp")

    @property
    def weight_bytes(self) -> int:
        """Bytes per parameter element: fp32 master weights unless the model itself is cast to half."""
        return 2 if self.precision in ("fp16", "bf16") else 4

    @property
    def act_bytes(self) -> int:
        """Bytes per element of activations outside autocast (fp32 model: 4; half model: 2)."""
        return 4 if self.precision == "fp32" or self.amp else 2


class Sim:
    """A ledger of live allocations, with its high-water mark: the backward, replayed."""

    def __init__(self, start: int = 0) -> None:
        self.live = start
        self.peak = start
        self.bufs: dict[str, int] = {}
        self.where = ""

    def alloc(self, name: str, nbytes: int) -> None:
        n = alloc(nbytes)
        if name in self.bufs:
            raise KeyError(f"buffer {name!r} allocated twice")
        self.bufs[name] = n
        self.live += n
        if self.live > self.peak:
            self.peak = self.live
            self.where = name

    def free(self, *names: str) -> None:
        for name in names:
            n = self.bufs.pop(name, None)
            if n is not None:
                self.live -= n

    def has(self, name: str) -> bool:
        return name in self.bufs


# ------------------------------------------------------------------------------------------ activations

# How HF's ACT2FN implements each activation, as autograd sees it: which tensor the backward keeps ("input"
# or "output"), how many more [T, I] tensors a Python-composed formula saves, and how many more are alive at
# once in a no-grad forward. ``gelu_new`` is 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) written out in
# Python: pow, tanh and two products each keep a tensor.
ACTIVATIONS: dict[str, tuple[str, int, int]] = {
    "gelu": ("input", 0, 0),
    "gelu_pytorch_tanh": ("input", 0, 0),
    "silu": ("input", 0, 0),
    "swish": ("input", 0, 0),
    "relu": ("output", 0, 0),
    "tanh": ("output", 0, 0),
    "gelu_new": ("input", 3, 2),
    "gelu_python": ("input", 3, 2),
    "quick_gelu": ("input", 1, 1),
    "gelu_fast": ("input", 6, 3),
}


def activation_profile(name: str) -> tuple[str, int, int]:
    """Unknown activations are modelled as a fused kernel that keeps its input (like F.gelu)."""
    return ACTIVATIONS.get(name, ("input", 0, 0))


# --------------------------------------------------------------------------------------------- the shapes


@dataclass(frozen=True)
class Shapes:
    """Everything the memory model needs to know about the model, read from the config and the parts."""

    B: int
    S: int
    H: int
    I: int  # noqa: E741
    A: int
    E: int  # embedding width (H unless factorized)
    V: int
    C: int  # labels
    L: int  # layer applications (ALBERT: num_hidden_layers)
    groups: int  # distinct layer parameter sets (ALBERT: num_hidden_groups; else L)
    inner: int  # layers per application (ALBERT's inner_group_num; else 1)
    token_types: bool
    project: bool  # a Linear from E to H after the embeddings (ALBERT, ELECTRA with E != H)
    attn_out_dropout: bool  # BERT drops out the attention projection; DistilBERT does not
    p_hidden: float
    p_attn: float
    family: str
    head: str
    pooler: bool
    positions: int  # rows of the position table (for the index buffers)
    linear_weights_per_layer: int  # elements in one layer's Linear weights (bf16 copies under autocast)
    head_linear_weights: int  # elements in the Linear weights outside the layers (pooler, head, projection)
    tied_decoder: bool
    grads: dict[str, int] = field(default_factory=dict)  # gradient bytes of one layer's parts, by role
    activation: str = "gelu"

    @property
    def T(self) -> int:
        return self.B * self.S


def part_bytes(part: Any, elem_bytes: int) -> int:
    """What one part's unique tensors occupy at ``elem_bytes`` per element, as the allocator counts them."""
    return sum(alloc(t.parameters * elem_bytes) for t in part.tensors if t.tied_to is None)


def shapes_of(arch: Architecture, cfg: ModelConfig, batch: int, seq: int, grad_bytes: int = 4) -> Shapes:
    d = cfg.dims
    comps = {c.name: c for c in arch.components}
    layer = next(c for c in arch.components if any(p.role == "q" for p in c.parts))
    inner = sum(p.role == "q" for p in layer.parts)
    p_hidden, p_attn = dropout_probs(cfg)
    lin_layer = sum(p.tensors[0].parameters for p in layer.parts if p.kind == "linear")
    lin_other = sum(p.tensors[0].parameters for c in arch.components if c is not layer for p in c.parts
                    if p.kind == "linear" and p.tensors[0].tied_to is None)
    tied_decoder = any(t.tied_to for c in arch.components for p in c.parts if p.role == "mlm_decoder"
                       for t in p.tensors[:1])
    return Shapes(
        B=batch, S=seq, H=d.H, I=d.I, A=d.A, E=d.E, V=d.V, C=d.C,
        L=layer.times_applied, groups=layer.repeat, inner=inner,
        token_types=d.T > 0,
        project=any(p.role == "emb_project" for c in arch.components for p in c.parts),
        attn_out_dropout=cfg.family != "distilbert",
        p_hidden=p_hidden, p_attn=p_attn,
        family=cfg.family, head=arch.head, pooler="pooler" in comps,
        positions=d.P,
        linear_weights_per_layer=lin_layer,
        head_linear_weights=lin_other,
        tied_decoder=tied_decoder,
        grads={p.role: part_bytes(p, grad_bytes) for p in layer.parts},
        activation=str(getattr(cfg, "hidden_act", None) or getattr(cfg, "activation", "gelu")),
    )


def dropout_probs(cfg: ModelConfig) -> tuple[float, float]:
    """(hidden, attention) dropout probabilities: HF's defaults (0.1) unless the config sets them."""
    if cfg.family == "distilbert":
        return float(getattr(cfg, "dropout", 0.1)), float(getattr(cfg, "attention_dropout", 0.1))
    return float(getattr(cfg, "hidden_dropout_prob", 0.1)), float(getattr(cfg, "attention_probs_dropout_prob", 0.1))


# ------------------------------------------------------------------------------------ saved activations


def _ceil(x: int, m: int) -> int:
    return -(-x // m) * m


def layer_saved(s: Shapes, o: Options) -> dict[str, int]:
    """What autograd keeps for one application of one encoder layer, by tensor. Bytes, before rounding.

    Eager (HF ``eager_attention_forward``): ``matmul`` folds [B, A, S, H/A] into a batch, which copies the
    transposed q and k (and v) views: the copies are what ``bmm`` saves. Softmax saves its output; dropout
    saves a one-byte mask, and ``bmm`` the dropped-out probabilities. sdpa (memory-efficient or flash) saves
    q, k, v, its output and a log-sum-exp instead. Under autocast each Linear casts its input to bf16 and
    saves the cast (q, k and v cast the layer input three times); LayerNorm and softmax run in fp32.
    """
    T, H, I, A, B, S = s.T, s.H, s.I, s.A, s.B, s.S  # noqa: E741
    TH, TI, BASS = T * H, T * I, B * A * S * S
    amp, a = o.amp, o.act_bytes
    c = 2 if amp else a  # dtype of matmul outputs
    ln = 4 if amp else a  # dtype of LayerNorm inputs (the residual sums)
    d: dict[str, int] = {}
    if amp:
        d.update(x_q=TH * 2, x_k=TH * 2, x_v=TH * 2)
    else:
        d["x"] = TH * a
    if o.attention == "eager":
        d["q_copy"] = d["k_copy"] = TH * c
        d["probs"] = BASS * (4 if amp else a)
        if s.p_attn > 0:
            d["probs_mask"] = BASS
        if amp:
            d["probs_bf16"] = BASS * 2
        elif s.p_attn > 0:
            d["probs_dropped"] = BASS * a
        d["v_copy"] = TH * c
        d["context"] = TH * c
    else:
        d["q"] = d["k"] = d["v"] = TH * c
        d["context"] = TH * c  # sdpa's output, viewed as [B, S, H], is also what the projection saves
        d["lse"] = B * A * _ceil(S, 32) * 4
    if s.attn_out_dropout and s.p_hidden > 0:
        d["attn_out_mask"] = TH
    d["ln1_in"] = TH * ln
    d["ln1_mean"] = d["ln1_rstd"] = T * 4
    d["ffn_in"] = TH * c
    keeps, extra, _ = activation_profile(s.activation)
    if keeps == "input":  # relu and tanh keep their output instead, which the next Linear keeps anyway
        d["inter"] = TI * c
    d["act"] = TI * c
    if extra:
        d["act_extra"] = extra * TI * c  # the intermediate tensors of a Python-composed activation
    if s.p_hidden > 0:
        d["ffn_out_mask"] = TH
    d["ln2_in"] = TH * ln
    d["ln2_mean"] = d["ln2_rstd"] = T * 4
    return d


def embeddings_saved(s: Shapes, o: Options) -> dict[str, int]:
    TE = s.T * s.E
    a = 4 if o.amp else o.act_bytes  # embedding lookups are not autocast: fp32 in amp
    d = {"emb_ln_in": TE * a, "emb_ln_mean": s.T * 4, "emb_ln_rstd": s.T * 4}
    if s.p_hidden > 0:
        d["emb_mask"] = TE
    if s.project:  # the projection (E -> H) saves its input; its output is layer 0's input
        d["proj_in"] = TE * (2 if o.amp else a)
    return d


def head_saved(s: Shapes, o: Options) -> dict[str, int]:
    """The task head and its loss. MLM: transform dense, activation, LayerNorm, decoder, log-softmax."""
    T, H, E, V, C, B = s.T, s.H, s.E, s.V, s.C, s.B
    amp, a = o.amp, o.act_bytes
    c = 2 if amp else a
    lsm = 4 if (amp or a == 4) else 2  # log_softmax output: fp32 under autocast
    width = E if s.family in ("albert", "electra") else H  # the MLM transform's width
    d: dict[str, int] = {}
    head = s.head
    extra = activation_profile(s.activation)[1]
    if head in ("mlm", "pretraining") and s.family != "electra":
        d.update(t_in=T * H * c, t_act=T * width * c, t_ln=T * width * (4 if amp else a), t_ln_mean=T * 4,
                 t_ln_rstd=T * 4, dec_in=T * width * c, logsm=T * V * lsm)
        if extra:
            d["t_act_extra"] = extra * T * width * c
        if amp:
            if s.tied_decoder:  # an untied decoder's cast is counted with the other Linear weights
                d["dec_w"] = V * width * 2
            d["logits_bf16"] = T * V * 2  # held to the backward under CUDA autocast (measured on H100)
    if head == "mlm" and s.family == "electra":
        d.update(t_in=T * H * c, t_act=T * E * c, t_ln=T * E * (4 if amp else a), t_ln_mean=T * 4,
                 t_ln_rstd=T * 4, dec_in=T * E * c, logsm=T * V * lsm)
        if amp:
            if s.tied_decoder:
                d["dec_w"] = V * E * 2
            d["logits_bf16"] = T * V * 2
    if head == "pretraining" and s.family == "electra":
        d.update(t_in=T * H * c, t_act=T * H * c, pred_in=T * H * c, bce=T * 4)
    pooled = s.pooler and head in ("model", "pretraining", "seq-cls")
    if pooled:  # the pooler's Linear saves a view of the [CLS] row, which keeps the last hidden state alive
        d["pool_keep"] = T * H * (0 if amp else a) + (B * H * 2 if amp else 0)
        d["pool_tanh"] = B * H * a
    if head == "seq-cls":
        if s.family in ("roberta", "electra"):  # dropout on [CLS], dense, tanh/gelu, dropout, out_proj
            d.update(cls_mask1=B * H, cls_in=B * H * c, cls_act=B * H * a, cls_mask2=B * H, out_in=B * H * c)
        elif s.family == "distilbert":  # pre_classifier on the [CLS] view keeps the hidden state
            d.update(pool_keep=T * H * (0 if amp else a) + (B * H * 2 if amp else 0), relu=B * H * a,
                     cls_mask=B * H, cls_in=B * H * c)
        else:
            d.update(cls_mask=B * H, cls_in=B * H * c)
        d["cls_logsm"] = B * C * 4
    if head == "token-cls":
        d.update(tok_mask=T * H, tok_in=T * H * c, tok_logsm=T * C * 4)
    if head == "qa":
        d.update(qa_in=T * H * c, qa_logsm=2 * B * s.S * 4)
    return d


def weight_casts(s: Shapes, o: Options) -> int:
    """Under autocast every Linear weight is cast to bf16 once per forward and saved for its backward."""
    if not o.amp:
        return 0
    return 2 * (s.groups * s.linear_weights_per_layer + s.head_linear_weights)


def saved_bytes(d: dict[str, int]) -> int:
    return sum(alloc(n) for n in d.values())


# ------------------------------------------------------------------------------------- the backward, replayed


def _grad_w(sim: Sim, name: str, nbytes: int, first: bool, o: Options) -> None:
    """A weight's gradient: allocated on first use and kept; later (shared ALBERT layers) a temporary added
    in place. Under autocast the bf16 gradient of the cast weight comes first, then its fp32 copy."""
    if nbytes == 0:
        return
    if o.amp:
        sim.alloc(name + ".bf16", nbytes // 2)
    if first:
        sim.alloc(name, nbytes)
        sim.free(name + ".bf16")
    else:
        sim.alloc(name + ".tmp", nbytes)
        sim.free(name + ".bf16", name + ".tmp")


def layer_backward(sim: Sim, s: Shapes, o: Options, tag: str, first: bool, saved: dict[str, int]) -> None:
    """One layer's backward, from the gradient of its output (``g``, in the sim) to the gradient of its
    input (``g`` again). ``tag`` names this layer's saved buffers in the sim."""
    T, H, I, A, B, S = s.T, s.H, s.I, s.A, s.B, s.S  # noqa: E741
    TH, TI, BASS = T * H, T * I, B * A * S * S
    amp, a = o.amp, o.act_bytes
    c = 2 if amp else a
    r = 4 if amp else a  # residual stream and LayerNorm grads

    def drop(*names: str) -> None:
        sim.free(*(f"{tag}.{n}" for n in names))

    def norm_then_branch(ln: str, grads: str, upstream: str, out: str, dropout: bool, mask: str) -> None:
        """LayerNorm ``ln``'s backward (its input's gradient ``g_{ln}``, fp32 under amp), then the residual
        hands that gradient to its branch: cast to the compute dtype under amp, through the branch's dropout
        if it has one; the branch's gradient is ``out``."""
        sim.alloc(f"g_{ln}", TH * r)
        _grad_w(sim, f"{tag}.{ln}.w", s.grads[grads], first, o)
        sim.free(upstream)
        drop(f"{ln}_in", f"{ln}_mean", f"{ln}_rstd")
        if amp:
            sim.alloc("g_cast", TH * 2)
        if dropout:
            sim.alloc(out, TH * c)
            sim.free("g_cast")
            drop(mask)
        else:
            sim.bufs[out] = sim.bufs.pop("g_cast", 0)

    # LayerNorm 2 (after the FFN residual); g_ln2 is kept for y1
    norm_then_branch("ln2", "ffn_norm", "g", "g_do", s.p_hidden > 0, "ffn_out_mask")
    # output dense (I -> H)
    sim.alloc("g_act", TI * c)
    _grad_w(sim, f"{tag}.out.w", s.grads["ffn_out"], first, o)
    sim.free("g_do")
    drop("act")
    # activation
    sim.alloc("g_inter", TI * c)
    sim.free("g_act")
    drop("inter", "act_extra")
    # intermediate dense (H -> I)
    sim.alloc("g_y1b", TH * c)
    _grad_w(sim, f"{tag}.inter.w", s.grads["ffn_in"], first, o)
    sim.free("g_inter")
    drop("ffn_in")
    if amp:
        sim.alloc("g_y1f", TH * 4)
        sim.free("g_y1b")
    sim.free("g_y1b", "g_y1f")  # added in place into g_ln2, which becomes y1's gradient
    # LayerNorm 1 (after the attention residual)
    norm_then_branch("ln1", "attn_norm", "g_ln2", "g_ado", s.attn_out_dropout and s.p_hidden > 0, "attn_out_mask")
    # attention output projection
    sim.alloc("g_ctx", TH * c)
    _grad_w(sim, f"{tag}.o.w", s.grads["attn_out"], first, o)
    sim.free("g_ado")
    drop("context")
    if o.attention == "eager":
        sim.alloc("g_ctx_c", TH * c)  # [B, S, A, H/A] -> [B*A, S, H/A] for bmm: a copy
        sim.free("g_ctx")
        # probs @ V
        sim.alloc("g_pd", BASS * c)
        sim.alloc("g_vc", TH * c)
        sim.free("g_ctx_c")
        drop("probs_dropped", "probs_bf16", "v_copy")
        if amp:
            sim.alloc("g_pd32", BASS * 4)
            sim.free("g_pd")
        if s.p_attn > 0:
            sim.alloc("g_p", BASS * (4 if amp else a))
            sim.free("g_pd", "g_pd32")
            drop("probs_mask")
        else:
            sim.bufs["g_p"] = sim.bufs.pop("g_pd32", 0) or sim.bufs.pop("g_pd", 0)
        # softmax
        sim.alloc("g_sc", BASS * (4 if amp else a))
        sim.free("g_p")
        drop("probs")
        if amp:
            sim.alloc("g_scb", BASS * 2)
            sim.free("g_sc")
        # * scaling
        sim.alloc("g_raw", BASS * c)
        sim.free("g_sc", "g_scb")
        # q @ k^T
        sim.alloc("g_qc", TH * c)
        sim.alloc("g_kc", TH * c)
        sim.free("g_raw")
        drop("q_copy", "k_copy")
        grads = ("g_qc", "g_kc", "g_vc")
    else:
        sim.alloc("g_out", TH * c)  # the output gradient in sdpa's layout
        sim.free("g_ctx")
        if amp or a == 2:
            sim.alloc("dq_accum", TH * 4)  # flash attention accumulates dq in fp32
        sim.alloc("delta", B * A * _ceil(S, 32) * 4)
        sim.alloc("g_qc", TH * c)
        sim.alloc("g_kc", TH * c)
        sim.alloc("g_vc", TH * c)
        sim.free("g_out", "dq_accum", "delta")
        drop("q", "k", "v", "lse")
        grads = ("g_qc", "g_kc", "g_vc")
    # back through the head split to each projection: a reshape of a transposed view copies
    for i, gname in enumerate(grads):
        sim.alloc(gname + "2", TH * c)
        sim.free(gname)
        sim.alloc(f"g_x{i}", TH * c)
        _grad_w(sim, f"{tag}.qkv{i}.w", s.grads["qkv"[i]], first, o)
        sim.free(gname + "2")
        if amp:
            sim.alloc(f"g_x{i}f", TH * 4)
            sim.free(f"g_x{i}")
        sim.free(f"g_x{i}", f"g_x{i}f")  # accumulated in place into the residual's gradient
    drop("x", "x_q", "x_k", "x_v")
    sim.bufs["g"] = sim.bufs.pop("g_ln1")


def _register(sim: Sim, prefix: str, d: dict[str, int]) -> None:
    """Put already-counted saved tensors into the ledger by name, so the backward can free them."""
    for k, n in d.items():
        sim.bufs[f"{prefix}.{k}"] = alloc(n)


def head_backward(sim: Sim, s: Shapes, o: Options, d: dict[str, int], grads: dict[str, int]) -> None:
    """From the loss to ``g``, the gradient of the last hidden state [T, H]."""
    T, H, E, V = s.T, s.H, s.E, s.V
    amp, a = o.amp, o.act_bytes
    c = 2 if amp else a
    r = 4 if amp else a
    width = E if s.family in ("albert", "electra") else H

    def drop(*names: str) -> None:
        sim.free(*(f"head.{n}" for n in names))

    if "logsm" in d:  # masked LM: cross-entropy over [T, V]
        lsm = 4 if (amp or a == 4) else 2
        sim.alloc("g_nll", T * V * lsm)
        if amp:  # measured on H100: the loss backward tops out one [T, V] fp32 buffer above the saved set
            drop("logsm", "logits_bf16")
        sim.alloc("g_logits", T * V * lsm)
        sim.free("g_nll")
        drop("logsm")
        if amp:
            sim.alloc("g_logits_b", T * V * 2)
            sim.free("g_logits")
        # decoder: its weight gradient is the word embeddings' (allocated here when tied)
        sim.alloc("g_dec_in", T * width * c)
        _grad_w(sim, "grad.decoder", grads.get("mlm_decoder", 0), True, o)
        _grad_w(sim, "grad.word", grads.get("word_tied", 0), True, o)  # a tied decoder's is the table's
        _grad_w(sim, "grad.mlm_bias", grads.get("mlm_bias", 0), True, o)
        sim.free("g_logits", "g_logits_b")
        drop("dec_in", "dec_w")
        sim.alloc("g_t_ln", T * width * r)
        _grad_w(sim, "grad.mlm_norm", grads.get("mlm_norm", 0), True, o)
        sim.free("g_dec_in")
        drop("t_ln", "t_ln_mean", "t_ln_rstd")
        sim.alloc("g_t_act", T * width * c)
        sim.free("g_t_ln")
        drop("t_act", "t_act_extra")
        sim.alloc("g_y", T * H * c)
        _grad_w(sim, "grad.mlm_transform", grads.get("mlm_transform", 0), True, o)
        sim.free("g_t_act")
        drop("t_in")
        if amp:
            sim.alloc("g_yf", T * H * 4)
            sim.free("g_y")
    elif "pred_in" in d:  # ELECTRA discriminator: dense, gelu, dense_prediction, BCE
        sim.alloc("g_pred", T * 4)
        drop("bce")
        sim.alloc("g_act", T * H * c)
        _grad_w(sim, "grad.disc_pred", grads.get("disc_pred", 0), True, o)
        sim.free("g_pred")
        drop("pred_in")
        sim.alloc("g_dense", T * H * c)
        sim.free("g_act")
        drop("t_act")
        sim.alloc("g_y", T * H * (4 if amp else c))
        _grad_w(sim, "grad.disc_dense", grads.get("disc_dense", 0), True, o)
        sim.free("g_dense")
        drop("t_in")
    elif "tok_in" in d or "qa_in" in d:  # per-token logits
        for role in ("cls_out", "qa_out"):
            _grad_w(sim, f"grad.{role}", grads.get(role, 0), True, o)
        sim.alloc("g_y", T * H * r)
        drop("tok_logsm", "tok_in", "tok_mask", "qa_logsm", "qa_in")
    else:  # a pooled or [CLS] head, or the bare model: the gradient of the hidden state is a [T, H] tensor
        for role in ("cls_out", "cls_dense", "seq_relationship", "pooler"):
            _grad_w(sim, f"grad.{role}", grads.get(role, 0), True, o)
        sim.alloc("g_y", T * H * r)  # select/slice backward materialises a zero [B, S, H] gradient
        drop(*[k for k in d if k.startswith(("pool", "cls", "out_in", "relu"))])
    sim.bufs["g"] = sim.bufs.pop("g_yf", 0) or sim.bufs.pop("g_y")


def embeddings_backward(sim: Sim, s: Shapes, o: Options, grads: dict[str, int]) -> None:
    """From the gradient of layer 0's input to the embedding tables' gradients."""
    TE = s.T * s.E
    amp, a = o.amp, o.act_bytes
    r = 4 if amp else a
    if s.project:
        sim.alloc("g_e", TE * (2 if amp else a))
        _grad_w(sim, "grad.emb_project", grads.get("emb_project", 0), True, o)
        sim.free("g")
        sim.free("emb.proj_in")
        if amp:
            sim.alloc("g_ef", TE * 4)
            sim.free("g_e")
        sim.bufs["g"] = sim.bufs.pop("g_ef", 0) or sim.bufs.pop("g_e")
    if s.p_hidden > 0:
        sim.alloc("g_do", TE * r)
        sim.free("g", "emb.emb_mask")
        sim.bufs["g"] = sim.bufs.pop("g_do")
    sim.alloc("g_sum", TE * r)
    _grad_w(sim, "grad.emb_norm", grads.get("emb_norm", 0), True, o)
    sim.free("g", "emb.emb_ln_in", "emb.emb_ln_mean", "emb.emb_ln_rstd")
    # the sum hands the same gradient to each lookup; each table's gradient is a dense [rows, E] tensor. Past
    # 3072 indices CUDA's embedding backward sorts them and reduces per segment, with [T, E] partial sums.
    tied = grads.get("word_tied", 0) > 0
    for role in ("word", "position", "token_type"):
        n = grads.get(role, 0)
        if not n:
            continue
        if s.T > 3072:
            sim.alloc("emb_partials", 2 * TE * 4)
        if role == "word" and tied:
            # The decoder's gradient for the shared table arrived first, as a transposed view (from W.t()),
            # and waits in autograd's input buffer. A non-contiguous buffer cannot be added to in place, so
            # the sum with the lookups' gradient is a third [V, E] tensor.
            sim.alloc("grad.word.tmp", n)
            sim.alloc("grad.word.sum", n)
            sim.free("grad.word.tmp", "grad.word")
            sim.bufs["grad.word"] = sim.bufs.pop("grad.word.sum")
        else:
            sim.alloc(f"grad.{role}", n)
        sim.free("emb_partials")
    sim.free("g_sum")


# ------------------------------------------------------------------------------------- weights and states


def buffer_bytes(cfg: ModelConfig) -> int:
    """The int64 index buffers HF registers: ``position_ids`` and (but for DistilBERT) ``token_type_ids``."""
    n = 1 if cfg.family == "distilbert" else 2
    return n * alloc(8 * cfg.dims.P)


def weights_bytes(arch: Architecture, cfg: ModelConfig, elem: int) -> int:
    return sum(part_bytes(p, elem) * c.repeat for c in arch.components for p in c.parts) + buffer_bytes(cfg)


def optimizer_bytes(arch: Architecture, o: Options, exact: bool = False) -> tuple[int, str]:
    """Optimizer state, from each parameter's shape, and the formula behind it. ``exact``: the states'
    own bytes, without allocator rounding or Adam's step counters (what the ZeRO formulas count)."""
    wb = o.weight_bytes
    total = 0
    rnd = (lambda nbytes: nbytes) if exact else alloc
    params = [(t, c.repeat) for c in arch.components for p in c.parts for t in p.tensors if t.tied_to is None]
    n_tensors = sum(rep for _, rep in params)
    if o.optimizer in ("adamw", "adam"):
        for t, rep in params:
            total += rep * 2 * rnd(t.parameters * wb)
        total += 0 if exact else n_tensors * rnd(4)  # fused Adam keeps each tensor's step count on the device
        return total, f"2 × {wb} B × N (exp_avg, exp_avg_sq) + one 4-byte step tensor per parameter tensor"
    if o.optimizer == "sgd":
        return 0, "none (plain SGD keeps no state)"
    if o.optimizer == "sgd-momentum":
        return sum(rep * rnd(t.parameters * wb) for t, rep in params), f"{wb} B × N (momentum buffer)"
    if o.optimizer == "adafactor":
        for t, rep in params:
            shape = t.shape
            if len(shape) >= 2:  # factored second moment: one row vector and one column vector
                total += rep * (rnd(math.prod(shape[:-1]) * 4) + rnd(shape[-1] * 4))
            else:
                total += rep * rnd(t.parameters * 4)
        return total, "4 B × (rows + cols) per matrix, 4 B × n per vector (factored second moment, no momentum)"
    if o.optimizer == "adamw-8bit":
        for t, rep in params:
            n = t.parameters
            if n >= 4096:  # bitsandbytes keeps two uint8 states and one fp32 absmax per 256-element block
                total += rep * 2 * (rnd(n) + rnd(4 * -(-n // 256)))
            else:
                total += rep * 2 * rnd(4 * n)
        return total, "2 × (1 B × n + 4 B × n/256) per tensor of ≥ 4096 elements; 2 × 4 B × n below that"
    raise UsageError(f"unknown optimizer {o.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}", param="optimizer")


# ---------------------------------------------------------------------------------------------- inference


def inference_moments(s: Shapes, o: Options) -> dict[str, tuple[int, str]]:
    """The largest working sets of a no-grad forward, moment by moment: (bytes above the weights, what).

    Python keeps some tensors alive past their last use: ``embedding_output`` for the whole encoder call,
    each layer's input for the whole layer, and (eager) the attention probabilities, returned as
    ``attn_weights`` and bound to ``_``, until the layer returns.
    """
    T, H, I, A, B, S, E, V = s.T, s.H, s.I, s.A, s.B, s.S, s.E, s.V  # noqa: E741
    TH, TI, BASS = T * H, T * I, B * A * S * S
    a = o.act_bytes
    c = 2 if o.amp else a  # matmul outputs
    sm = 4 if o.amp else a  # softmax output under autocast is fp32
    f = 4 if o.amp else a  # LayerNorm outputs, the residual stream
    held = alloc(T * E * f)  # the embeddings' output, held by the base model's forward
    x = alloc(TH * f)
    m: dict[str, tuple[int, str]] = {
        "embeddings": (4 * alloc(T * E * f), "three lookups and their sum [B, S, E]"),
    }
    qkv = 3 * alloc(TH * c)
    base = "embedding output + layer input + Q, K, V"
    if o.attention == "eager":
        m["attention scores"] = (held + x + qkv + 2 * alloc(BASS * c),
                                 base + " + Q·Kᵀ and its scaled copy [B, A, S, S]")
        m["softmax"] = (held + x + qkv + alloc(BASS * c) + alloc(BASS * sm), base + " + scores and probabilities")
        m["probs · V"] = (held + x + qkv + alloc(BASS * sm) + 2 * alloc(TH * c), base + " + probabilities + V copy "
                          "+ context")
        kept, why = alloc(BASS * sm), " + attention probabilities (held as attn_weights)"
    else:
        m["attention (sdpa)"] = (held + x + qkv + alloc(TH * c), base + " + sdpa output")
        kept, why = 0, ""
    extra = activation_profile(s.activation)[2]
    m["feed-forward"] = (held + x + alloc(TH * f) + kept + (2 + extra) * alloc(TI * c),
                         f"embedding output + layer input + attention output{why} + FFN intermediate and "
                         f"{s.activation} output [B, S, I]" + (f" + {extra} more from the composed {s.activation}"
                                                                if extra else ""))
    if s.head in ("mlm", "pretraining") and not (s.family == "electra" and s.head == "pretraining"):
        width = E if s.family in ("albert", "electra") else H
        m["MLM logits"] = (x + alloc(T * width * f) + alloc(T * V * c),
                           "last hidden state + transform output + logits [B, S, V]")
    return m


# ------------------------------------------------------------------------------------------------ the step


def _grads_by_role(arch: Architecture, elem: int, layer_name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    tied_word = any(t.tied_to and t.tied_to.endswith("word_embeddings.weight") for c in arch.components
                    for p in c.parts for t in p.tensors)
    for c in arch.components:
        if c.name == layer_name:
            continue
        for p in c.parts:
            n = part_bytes(p, elem)
            if p.role == "word" and tied_word:
                out["word_tied"] = n
                out["word"] = n
                continue
            out[p.role] = out.get(p.role, 0) + n
    return out


def _layer_run(s: Shapes, o: Options, first: bool, saved: dict[str, int]) -> tuple[int, int]:
    """One application of the layer template (all its inner layers): (peak rise, net change) of live bytes,
    measured from its start with its saved tensors and the incoming gradient live."""
    sim = Sim()
    r = 4 if o.amp else o.act_bytes
    sim.alloc("g", s.T * s.H * r)
    if o.grad_checkpointing:  # only the layer's input was kept; the forward runs again, saving as usual
        sim.alloc("ckpt", s.T * s.H * r)
        start = sim.live
    for j in range(s.inner):
        for k, n in saved.items():
            sim.alloc(f"l{j}.{k}", n)
    if not o.grad_checkpointing:  # the saved set was there before the backward reached this layer
        start = sim.live
    sim.peak = start
    for j in reversed(range(s.inner)):
        layer_backward(sim, s, o, f"l{j}", first, saved)
    sim.free("ckpt")
    return sim.peak - start, sim.live - start


def training_peak(arch: Architecture, cfg: ModelConfig, o: Options) -> dict[str, Any]:
    wb = o.weight_bytes
    s = shapes_of(arch, cfg, o.batch, o.seq, grad_bytes=wb)
    layer_name = next(c.name for c in arch.components if any(p.role == "q" for p in c.parts))
    grads = _grads_by_role(arch, wb, layer_name)
    weights = weights_bytes(arch, cfg, wb)
    opt, _ = optimizer_bytes(arch, o)
    grads_total = weights - buffer_bytes(cfg)
    steady = weights + opt
    ls, es, hs = layer_saved(s, o), embeddings_saved(s, o), head_saved(s, o)
    r = 4 if o.amp else o.act_bytes
    per_app = alloc(s.T * s.H * r) if o.grad_checkpointing else s.inner * saved_bytes(ls)
    layers_saved = s.L * per_app
    casts = 0 if o.grad_checkpointing else weight_casts(s, o)
    saved = saved_bytes(es) + layers_saved + saved_bytes(hs) + casts
    # the backward: loss and head
    sim = Sim(steady + saved)
    _register(sim, "head", hs)
    head_backward(sim, s, o, hs, grads)
    head_peak = sim.peak
    x = sim.live
    # the layers, last applied first; each application frees its saved set and adds its gradients once
    best = x
    if s.L:
        rise1, net1 = _layer_run(s, o, True, ls)
        rise2, net2 = _layer_run(s, o, False, ls)
        runs = [s.L // s.groups + (1 if g < s.L % s.groups else 0) for g in range(s.groups)]
        if len(set(runs)) == 1 and runs[0] == 1:  # one application per parameter set: closed form
            best = x + max(0, (s.L - 1) * net1) + rise1
            x += s.L * net1
        else:
            for n in runs:
                if n == 0:
                    continue
                best = max(best, x + rise1, x + net1 + rise2 if n > 1 else 0)
                x += net1 + (n - 1) * net2
        x -= casts  # the bf16 weight copies go with the last backward that used them
    # the embeddings
    emb = Sim(x)
    emb.bufs["g"] = 0
    _register(emb, "emb", es)
    embeddings_backward(emb, s, o, grads)
    end = emb.live
    peak = max(head_peak, best, emb.peak, steady + grads_total)
    where = max((head_peak, "loss and head backward"), (best, "encoder backward"), (emb.peak, "embeddings backward"),
                (steady + grads_total, "optimizer step"))[1]
    return {
        "shapes": s, "weights": weights, "optimizer": opt, "gradients": grads_total, "steady": steady,
        "saved": saved, "saved_layer": per_app, "saved_embeddings": saved_bytes(es), "saved_head": saved_bytes(hs),
        "weight_casts": casts, "peak": peak, "transient": peak - steady - saved, "where": where, "end": end,
    }


def inference_peak(arch: Architecture, cfg: ModelConfig, o: Options) -> dict[str, Any]:
    s = shapes_of(arch, cfg, o.batch, o.seq, grad_bytes=o.weight_bytes)
    weights = weights_bytes(arch, cfg, o.weight_bytes)
    moments = inference_moments(s, o)
    where, (act, _) = max(moments.items(), key=lambda kv: kv[1][0])
    return {"shapes": s, "weights": weights, "moments": moments, "activations": act, "where": where,
            "peak": weights + act}


# -------------------------------------------------------------------------------------------------- report


NOT_COUNTED = (
    "the CUDA context (several hundred MiB per process, outside PyTorch's allocator)",
    "allocator fragmentation: memory reserved in cached segments but not allocated to a tensor",
    "block slack when the allocator reuses a larger cached block (up to 1 MiB per large tensor; "
    "about 12 MiB after model.to(bfloat16) for BERT-base)",
    "cuBLAS/cuDNN workspaces and the inputs (input_ids, labels)",
)


@dataclass(frozen=True)
class Term:
    name: str
    bytes: int
    formula: str
    note: str = ""
    # How the figure relates to the peak. Top-level terms: "summand" (the summands add up to the peak),
    # "total" (the peak), "after" (not part of the sum: gradients, of which only those produced so far are
    # live at the peak, inside the transient). Detail rows: "part" (the parts add up to their term), "unit"
    # (one of L identical parts, shown for reference), "candidate" (one moment of a no-grad forward; the peak
    # is the largest), "peak moment" (that largest one).
    role: str = "summand"


@dataclass(frozen=True)
class MemoryReport(ModelReport):
    kind: ClassVar[str] = "memory"

    options: Options
    terms: tuple[Term, ...]
    peak_bytes: int
    where: str
    parameters: int
    weights_only: tuple[tuple[str, int], ...]
    saved_detail: tuple[Term, ...] = ()
    budget: int | None = None
    max_batch: int | None = None
    fits: bool | None = None
    min_batch_peak: int | None = None  # the peak at batch 1, when even that does not fit
    gpu: str | None = None
    zero: tuple[Term, ...] = ()
    not_counted: tuple[str, ...] = NOT_COUNTED

    @property
    def breakdown(self) -> dict[str, int]:
        return {t.name: t.bytes for t in self.terms}

    @property
    def summands(self) -> tuple[Term, ...]:
        """The terms that add up to ``peak_bytes``."""
        return tuple(t for t in self.terms if t.role == "summand")

    def to_dict(self) -> dict[str, Any]:
        o = self.options
        out: dict[str, Any] = {
            **self.identity(),
            "options": {"mode": o.mode, "precision": o.precision, "optimizer": o.optimizer if o.mode == "train"
                        else None, "attention": o.attention, "grad_checkpointing": o.grad_checkpointing,
                        "batch": o.batch, "seq": o.seq},
            "peak_bytes": self.peak_bytes,
            "peak_at": self.where,
            "breakdown": self.breakdown,
            "peak_terms": [t.name for t in self.summands],
            "formulas": {t.name: t.formula for t in self.terms},
            "saved_activations_detail": {t.name: t.bytes for t in self.saved_detail},
            "weights_only": dict(self.weights_only),
            "not_counted": list(self.not_counted),
        }
        if self.budget is not None:
            out.update(budget_bytes=self.budget, max_batch=self.max_batch, fits=self.fits)
            if self.gpu:
                out["gpu"] = self.gpu
        if self.zero:
            out["zero"] = {t.name: t.bytes for t in self.zero}
            out["zero_formulas"] = {t.name: t.formula for t in self.zero}
        return out


def _weights_only(n: int) -> tuple[tuple[str, int], ...]:
    return (("fp32", 4 * n), ("fp16/bf16", 2 * n), ("int8", n), ("int4", -(-n // 2)))


def peak(arch: Architecture, cfg: ModelConfig, o: Options) -> int:
    return (training_peak if o.mode == "train" else inference_peak)(arch, cfg, o)["peak"]


def max_batch(arch: Architecture, cfg: ModelConfig, o: Options, budget: int, limit: int = 1 << 40) -> int:
    """The largest batch whose peak fits in ``budget`` bytes at this sequence length (0 if none does)."""
    from dataclasses import replace

    def fits(b: int) -> bool:
        return peak(arch, cfg, replace(o, batch=b)) <= budget

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # fits(lo) and not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def zero_terms(arch: Architecture, o: Options, stage: int, gpus: int) -> tuple[Term, ...]:
    """Per-GPU model states under ZeRO, by the paper's formulas (Rajbhandari et al., 2020): (W + G + K)·Ψ
    bytes for Ψ parameters, with stage 1 sharding the optimizer's K·Ψ over N GPUs, stage 2 also the
    gradients, stage 3 also the parameters.

    Mixed precision (``amp-*``) is the paper's setting: 2Ψ bf16/fp16 parameters, 2Ψ gradients, and K = 4
    (the fp32 master copy) + the optimizer's fp32 states (8 for Adam: K = 12). Otherwise the weights are their
    own master copy: W = G = 4 (fp32) or 2 (bf16/fp16), and K is the optimizer's states alone."""
    if gpus < 1:
        raise UsageError("--gpus must be at least 1", param="gpus")
    if stage not in (1, 2, 3):
        raise UsageError(f"--zero takes 1, 2 or 3, got {stage}", param="zero")
    n = arch.total_parameters
    states = optimizer_bytes(arch, o, exact=True)[0]
    wc = 2 if o.amp else o.weight_bytes  # bytes per parameter: weights, and their gradients
    w = g = wc * n
    opt = (4 * n if o.amp else 0) + states

    def coef(x: int) -> str:
        return f"{x // n}" if n and x % n == 0 else f"{x / n:.2f}" if n else "0"

    k = coef(opt)
    per = {
        1: (w + g + -(-opt // gpus), f"{wc}Ψ + {wc}Ψ + {k}Ψ/N"),
        2: (w + -(-(g + opt) // gpus), f"{wc}Ψ + ({wc} + {k})Ψ/N"),
        3: (-(-(w + g + opt) // gpus), f"({wc} + {wc} + {k})Ψ/N"),
    }
    why = ("fp32 master weights + the optimizer's fp32 states" if o.amp else "the optimizer's states")
    psi = f"Ψ = {n:,}, K = {k} ({why})"
    return (
        Term("model states, no ZeRO (per GPU)", w + g + opt, f"({wc} + {wc} + {k})Ψ; {psi}"),
        Term(f"model states, ZeRO-{stage} (per GPU, N = {gpus})", per[stage][0], f"{per[stage][1]}, N = {gpus}"),
    )


def estimate(arch: Architecture, cfg: ModelConfig, o: Options, *, label: str = "", budget: int | None = None,
             gpu: str | None = None, zero: int | None = None, gpus: int = 1) -> MemoryReport:
    """The memory report for one configuration."""
    from .architecture import check_batch

    if o.precision not in PRECISIONS:
        raise UsageError(f"unknown precision {o.precision!r}; choose one of {', '.join(PRECISIONS)}", param="precision")
    if o.attention not in ATTENTIONS:
        raise UsageError(f"unknown attention {o.attention!r}; choose eager or sdpa", param="attention")
    check_batch(cfg, o.batch, o.seq)
    n = arch.total_parameters
    wb = o.weight_bytes
    terms: list[Term] = []
    detail: list[Term] = []
    if o.mode == "train":
        t = training_peak(arch, cfg, o)
        s = t["shapes"]
        opt_formula = optimizer_bytes(arch, o)[1]
        terms += [
            Term("weights", t["weights"], f"{wb} B × N, N = {n:,} (+ index buffers)"),
            Term("gradients", t["gradients"], f"{wb} B × N", role="after"),
            Term("optimizer states", t["optimizer"], opt_formula),
            Term("saved activations", t["saved"], "embeddings + L × layer + head and loss"
                 + (" + bf16 weight copies" if o.amp else "") + (" (checkpointed: layer inputs only)"
                                                                   if o.grad_checkpointing else "")),
            Term("transient peak", t["transient"], f"gradients so far + backward temporaries, at the highest point "
                 f"({t['where']})"),
        ]
        kept = "its input only; the rest is recomputed in the backward" if o.grad_checkpointing else \
            "Linear inputs, attention operands and probabilities, masks, LayerNorm inputs"
        detail += [
            Term("embeddings", t["saved_embeddings"], "LayerNorm input and statistics, dropout mask", role="part"),
            Term("one layer", t["saved_layer"], kept, role="unit"),
            Term(f"all layers (× {s.L})", s.L * t["saved_layer"], "L × one layer", role="part"),
            Term("head and loss", t["saved_head"], "MLM: transform, decoder input, log-softmax [B·S, V]"
                 if arch.head in ("mlm", "pretraining") else "the head's inputs and the loss", role="part"),
        ]
        if t["weight_casts"]:
            detail.append(Term("bf16 weight copies", t["weight_casts"], "2 B × Linear weights, cast once per forward",
                               role="part"))
        peak_bytes, where = t["peak"], t["where"]
        if o.grad_checkpointing and where == "encoder backward":
            where += " (one layer recomputed)"
    else:
        r = inference_peak(arch, cfg, o)
        terms += [
            Term("weights", r["weights"], f"{wb} B × N, N = {n:,} (+ index buffers)"),
            Term("activations at peak", r["activations"], f"live tensors at the largest moment: {r['where']}"),
        ]
        detail += [Term(k, v, what, role="peak moment" if k == r["where"] else "candidate")
                   for k, (v, what) in r["moments"].items()]
        peak_bytes, where = r["peak"], r["where"]
    terms.append(Term("peak allocated", peak_bytes, "the sum of the terms above, at the step's highest point",
                      role="total"))
    best = fits = floor = None
    if budget is not None:
        from dataclasses import replace

        best = max_batch(arch, cfg, o, budget)
        fits = peak_bytes <= budget
        if best == 0:
            floor = peak(arch, cfg, replace(o, batch=1))
    zero_t: tuple[Term, ...] = ()
    if zero is not None:
        if o.mode != "train":
            raise UsageError("--zero shards training state (parameters, gradients, optimizer); use --mode train",
                             param="zero")
        zero_t = zero_terms(arch, o, zero, gpus)
    return MemoryReport(
        **identify(arch, label, cfg.fields()), options=o, terms=tuple(terms), peak_bytes=peak_bytes, where=where,
        parameters=n,
        weights_only=_weights_only(n), saved_detail=tuple(detail), budget=budget, max_batch=best, fits=fits,
        min_batch_peak=floor,
        gpu=gpu, zero=zero_t,
    )


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_size(text: str) -> int:
    """``80GiB`` -> 85899345920, ``24GB`` -> 24000000000, ``81920MiB``, ``1.5 TiB``."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        hint = "a unit is needed" if m and not unit else "cannot read it"
        raise UsageError(f"memory size {text!r}: {hint}; write e.g. 80GiB, 24GB or 81920MiB", param="fit")
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise UsageError(f"memory size must be positive, got {text!r}", param="fit")
    return value
