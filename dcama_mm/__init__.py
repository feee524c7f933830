"""dcama_mm: DCAMA few-shot segmentation as an MMSegmentation 1.x plugin.

Importing this package registers its models, datasets, transforms, samplers,
metrics and hooks in mmseg's registries, and makes mmengine able to load its
own checkpoints under torch >= 2.6 (see :mod:`dcama_mm.utils.compat`).
"""
from .version import __version__
from .utils import compat  # noqa: F401  (patches before anything loads)
from . import apis, datasets, engine, evaluation, models, visualization  # noqa: F401,E501

__all__ = ['__version__']
