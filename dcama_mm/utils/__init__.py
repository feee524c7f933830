# Copyright (c) dcama_mm contributors. All rights reserved.
from .checks import check_choice
from .compat import load_local_checkpoint, register_trusted_local_loader

__all__ = [
    'check_choice', 'load_local_checkpoint', 'register_trusted_local_loader'
]
