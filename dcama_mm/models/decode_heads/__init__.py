# Copyright (c) dcama_mm contributors. All rights reserved.
from .dcama_head import DCAMAHead

__all__ = ['DCAMAHead']
