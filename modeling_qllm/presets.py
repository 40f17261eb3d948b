"""Head presets: the JSON files of ``configuration/heads/`` (the paper's heads and the classical baselines).

Example:
    >>> settings = load_head_preset("paper_best_14q")
    >>> settings["num_encoders"], settings["encoder_qubits"], settings["merge"]
    (2, 7, 'concat')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Union

PRESET_DIR = Path(__file__).resolve().parents[1] / "configuration" / "heads"


def available_head_presets() -> List[str]:
    """Names of the presets shipped in ``configuration/heads/``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_head_preset(name_or_path: Union[str, Path]) -> Dict[str, Any]:
    """Settings of a preset (by name, or a path to a JSON file), without its ``_comment`` keys."""
    path = Path(name_or_path)
    if not path.is_file():
        path = PRESET_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ValueError(f"unknown head preset {str(name_or_path)!r}; expected a JSON file or one of {available_head_presets()}")
    settings = json.loads(path.read_text())
    if not isinstance(settings, dict):
        raise ValueError(f"head preset {path} must hold a JSON object of QLLMConfig fields")
    return {k: v for k, v in settings.items() if not k.startswith("_")}
