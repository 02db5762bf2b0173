"""The values of the run options (``--precision``, ``--optimizer``, ``--attention``, ``--mode``), apart from the
memory model that reads them, so that the CLI can build its choices without importing it (``flops`` needs the
precisions, not memsim)."""

PRECISIONS = ("fp32", "fp16", "bf16", "amp-bf16", "amp-fp16")
OPTIMIZERS = ("adamw", "adam", "sgd", "sgd-momentum", "adafactor", "adamw-8bit")
ATTENTIONS = ("eager", "sdpa")
MODES = ("train", "infer")
