"""tdwgym.agents: world models, curiosity rewards and training (needs the ``agents`` extra).

The names below load on first use (``from tdwgym.agents import CuriosityVecEnv``), so ``import tdwgym.agents``
alone imports neither torch nor stable-baselines3.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CuriosityCallback": "tdwgym.agents.callbacks",
    "CuriosityConfig": "tdwgym.agents.curiosity",
    "CuriosityVecEnv": "tdwgym.agents.curiosity",
    "ObservationExtractor": "tdwgym.agents.features",
    "TrainConfig": "tdwgym.agents.training",
    "make_vec_env": "tdwgym.agents.training",
    "multi_input_policy_kwargs": "tdwgym.agents.features",
    "train": "tdwgym.agents.training",
}
"""Public name -> the module that defines it."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tdwgym.agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
