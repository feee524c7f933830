"""Inference on users' images: :func:`init_model`,
:class:`FewShotInferencer`."""
from .few_shot_inferencer import FewShotInferencer
from .inference import init_model

__all__ = ['init_model', 'FewShotInferencer']
