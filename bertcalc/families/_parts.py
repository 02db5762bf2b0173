"""Building blocks shared by the families: the parameter-holding modules of ``torch.nn``.

Each returns a :class:`~bertcalc.model.Part` whose tensors have exactly the names and shapes that
``torch.nn`` gives them, so a family module reads like the HF ``__init__`` it mirrors.
"""

from __future__ import annotations

from ..model import Dim, Part, TensorSpec, TokenScope


def linear(
    label: str, module: str, d_in: Dim, d_out: Dim, *, bias: bool = True, tokens: TokenScope = "all",
    description: str = "",
) -> Part:
    """``nn.Linear(in, out)``: weight ``[out, in]`` (PyTorch layout), bias ``[out]``."""
    tensors = [TensorSpec(f"{module}.weight", (d_out, d_in), "weight")]
    if bias:
        tensors.append(TensorSpec(f"{module}.bias", (d_out,), "bias"))
    return Part(label, module, "linear", tuple(tensors), tokens=tokens, description=description)


def embedding(label: str, module: str, rows: Dim, dim: Dim, description: str = "") -> Part:
    """``nn.Embedding(rows, dim)``: weight ``[rows, dim]``."""
    return Part(label, module, "embedding", (TensorSpec(f"{module}.weight", (rows, dim), "embedding"),),
                description=description)


def layernorm(label: str, module: str, dim: Dim, description: str = "") -> Part:
    """``nn.LayerNorm(dim)``: weight (γ) ``[dim]`` and bias (β) ``[dim]``."""
    return Part(
        label,
        module,
        "layernorm",
        (TensorSpec(f"{module}.weight", (dim,), "norm_weight"), TensorSpec(f"{module}.bias", (dim,), "norm_bias")),
        description=description,
    )
