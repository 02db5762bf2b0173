"""Building blocks shared by the families: the parameter-holding modules of ``torch.nn``.

Each returns a :class:`~bertcalc.model.Part` whose tensors have exactly the names and shapes that
``torch.nn`` gives them, so a family module reads like the HF ``__init__`` it mirrors. ``role`` says what the
module does in the forward pass (see :mod:`bertcalc.activations`).

Each is a pure function of hashable arguments (a :class:`Dim` is a frozen value), so it is memoised: configs that
differ in a few sizes (a sweep over layers or vocabularies, ``compare``) share every part the change leaves
alone, instead of rebuilding the same tensors. A part is an immutable value; sharing one between models is
sharing ``Dim(768)``.
"""

from functools import lru_cache, wraps

from ..model import Dim, Part, TensorSpec, TokenScope

# 512 parts: those of a few dozen distinct model shapes. A larger cache holds on to parts that will not come
# back (a vocabulary sweep makes a new word table every config), and those cost the garbage collector more
# than they save: count(preset=...) over bench/throughput.py's stream ran at 14,800 configs/s with 4,096,
# 19,100 with 512 (17,700 with 1,024, 16,800 with 128; medians of interleaved runs)
from ..symbolic import TRACING  # set while a build is traced: its dims are symbols, which a memo would pin


def _memo(fn):
    cached = lru_cache(maxsize=512)(fn)

    @wraps(fn)
    def part(*args, **kwargs):
        if TRACING[0]:
            return fn(*args, **kwargs)
        return cached(*args, **kwargs)

    part.cache_info, part.cache_clear = cached.cache_info, cached.cache_clear
    return part


@_memo
def linear(
    label: str,
    module: str,
    d_in: Dim,
    d_out: Dim,
    *,
    bias: bool = True,
    tokens: TokenScope = "all",
    description: str = "",
    role: str = "",
    weight_tied_to: str | None = None,
    bias_tied_to: str | None = None,
) -> Part:
    """``nn.Linear(in, out)``: weight ``[out, in]`` (PyTorch layout), bias ``[out]``."""
    tensors = [TensorSpec(f"{module}.weight", (d_out, d_in), "weight", weight_tied_to)]
    if bias:
        tensors.append(TensorSpec(f"{module}.bias", (d_out,), "bias", bias_tied_to))
    return Part(label, module, "linear", tuple(tensors), tokens=tokens, description=description, role=role)


@_memo
def embedding(label: str, module: str, rows: Dim, dim: Dim, description: str = "", role: str = "") -> Part:
    """``nn.Embedding(rows, dim)``: weight ``[rows, dim]``."""
    return Part(label, module, "embedding", (TensorSpec(f"{module}.weight", (rows, dim), "embedding"),),
                description=description, role=role)


@_memo
def layernorm(label: str, module: str, dim: Dim, description: str = "", role: str = "", bias: bool = True) -> Part:
    """``nn.LayerNorm(dim, bias=bias)``: weight (γ) ``[dim]`` and, unless ``bias=False``, bias (β) ``[dim]``."""
    tensors = [TensorSpec(f"{module}.weight", (dim,), "norm_weight")]
    if bias:
        tensors.append(TensorSpec(f"{module}.bias", (dim,), "norm_bias"))
    return Part(label, module, "layernorm", tuple(tensors), description=description, role=role)


@_memo
def lone_bias(label: str, name: str, dim: Dim, description: str = "", role: str = "") -> Part:
    """An ``nn.Parameter`` vector on its own, like ``cls.predictions.bias``."""
    module = name.rsplit(".", 1)[0]
    return Part(label, module, "bias", (TensorSpec(name, (dim,), "bias"),), description=description, role=role)
