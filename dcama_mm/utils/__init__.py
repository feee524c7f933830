# Copyright (c) dcama_mm contributors. All rights reserved.
from .compat import load_local_checkpoint, register_trusted_local_loader

__all__ = ['load_local_checkpoint', 'register_trusted_local_loader']
