"""One module per model family: config -> :class:`~bertcalc.model.Architecture`."""
