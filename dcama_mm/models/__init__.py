from . import backbones, decode_heads, segmentors, utils  # noqa: F401
