"""Engine capabilities (base) and their implementations, one module per model family."""
from stemlink.engine.models.base import (
    Accompanist,
    EngineModel,
    Generator,
    ModelSpec,
    ProgressCallback,
    Scorer,
    Separator,
)

__all__ = ["Accompanist", "EngineModel", "Generator", "ModelSpec", "ProgressCallback", "Scorer", "Separator"]
