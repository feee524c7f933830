# Copyright (c) dcama_mm contributors. All rights reserved.
from .checks import (UnknownOptionError, check_arguments, check_choice,
                     check_keys, strict_arguments)
from .compat import load_local_checkpoint, register_trusted_local_loader

__all__ = [
    'UnknownOptionError', 'check_arguments', 'check_choice', 'check_keys',
    'strict_arguments', 'load_local_checkpoint',
    'register_trusted_local_loader'
]
