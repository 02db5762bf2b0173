"""The table of shipped presets."""

from __future__ import annotations

from typing import Any, ClassVar

from .config import ModelConfig
from .records import frozen


@frozen
class PresetRow:
    name: str
    description: str
    config: ModelConfig
    total_parameters: int


@frozen
class PresetsReport:
    kind: ClassVar[str] = "presets"

    rows: tuple[PresetRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "presets": [
                {
                    "name": r.name,
                    "description": r.description,
                    "family": r.config.family,
                    "config": r.config.fields(),
                    "dims": r.config.dims._asdict(),
                    "total_parameters": r.total_parameters,
                }
                for r in self.rows
            ]
        }
