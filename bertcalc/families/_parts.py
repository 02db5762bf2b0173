"""Building blocks shared by the families: the parameter-holding modules of ``torch.nn``.

Each returns a :class:`~bertcalc.model.Part` whose tensors have exactly the names and shapes that
``torch.nn`` gives them, so a family module reads like the HF ``__init__`` it mirrors. ``role`` says what the
module does in the forward pass (see :mod:`bertcalc.activations`).
"""

from __future__ import annotations

from ..model import Dim, Part, TensorSpec, TokenScope


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


def embedding(label: str, module: str, rows: Dim, dim: Dim, description: str = "", role: str = "") -> Part:
    """``nn.Embedding(rows, dim)``: weight ``[rows, dim]``."""
    return Part(label, module, "embedding", (TensorSpec(f"{module}.weight", (rows, dim), "embedding"),),
                description=description, role=role)


def layernorm(label: str, module: str, dim: Dim, description: str = "", role: str = "", bias: bool = True) -> Part:
    """``nn.LayerNorm(dim, bias=bias)``: weight (γ) ``[dim]`` and, unless ``bias=False``, bias (β) ``[dim]``."""
    tensors = [TensorSpec(f"{module}.weight", (dim,), "norm_weight")]
    if bias:
        tensors.append(TensorSpec(f"{module}.bias", (dim,), "norm_bias"))
    return Part(label, module, "layernorm", tuple(tensors), description=description, role=role)


def lone_bias(label: str, name: str, dim: Dim, description: str = "", role: str = "") -> Part:
    """An ``nn.Parameter`` vector on its own, like ``cls.predictions.bias``."""
    module = name.rsplit(".", 1)[0]
    return Part(label, module, "bias", (TensorSpec(name, (dim,), "bias"),), description=description, role=role)
