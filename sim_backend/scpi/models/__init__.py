"""Instrument personalities, one module per model family; adding a model is adding a module.

Each module defines `PERSONALITIES`: a tuple of personality classes. A class names the station
file models it answers to (`models`), its role, how to build its front panel for the world and
how to build itself on that panel:

    class Keysight33500B(ScpiPersonality):
        models = ("keysight_33522b", "keysight_33622a")
        role = "pulse_generator"

        @classmethod
        def create_panel(cls, model: str, settings: dict) -> PulseGeneratorPanel: ...

        def __init__(self, world: World, role_name: str, model: str, settings: dict): ...
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def personality_classes() -> dict[str, type]:
    """Station-file model name -> personality class, from every module in this package."""
    found: dict[str, type] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for cls in getattr(module, "PERSONALITIES", ()):
            for model in cls.models:
                if model in found:
                    raise RuntimeError(f"model {model!r} is claimed by {found[model].__name__} and {cls.__name__}")
                found[model] = cls
    return found
