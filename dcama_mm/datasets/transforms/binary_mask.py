# Copyright (c) dcama_mm contributors. All rights reserved.
"""The one rule for reading a binary (foreground / background) mask.

Used wherever a mask says "this is the object" rather than carrying class
labels: FSS-1000's masks, a user's support masks in
:class:`~dcama_mm.apis.FewShotInferencer` and ``tools/infer.py``, and the
tests. Label masks (COCO-20i, PASCAL-5i) go through their dataset's lookup
table instead.

The rule: a pixel is foreground where its value is >= 128 (0/255 masks,
and soft or anti-aliased 0..255 masks cut in the middle); in a mask whose
largest value is at most 1 (a 0/1 mask, or a float mask in 0..1) where it
is >= 0.5; in a 16-bit mask with values above 255 where it is >= 32768.
Boolean arrays are taken as they are. In a colour mask (RGB or RGBA) a
pixel counts where any of its colour channels does (a red object on black
is foreground; alpha is ignored); a grey mask with alpha uses its grey
channel.
"""
import numpy as np

FOREGROUND_THRESHOLD = 128
FOREGROUND_THRESHOLD_16BIT = 32768


def to_binary_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """A mask read as a file or given as an array -> ``uint8`` 0/1 ``HxW``.

    Args:
        mask (np.ndarray): ``HxW`` or ``HxWxC`` ``bool``, integer or float
            mask with values in 0..65535.
        name (str): What to call it in messages, e.g. ``"mask 'a.png'"``.

    Returns:
        np.ndarray: A new ``uint8`` array, 1 = foreground.

    Raises:
        ValueError: Not a 2-D (or 3-D) mask, or values outside 0..65535.
    """
    if mask.ndim == 3:
        # grey + alpha: the grey channel; RGB(A): any colour channel
        mask = mask[..., :3].max(axis=2) if mask.shape[2] >= 3 else \
            mask[..., 0]
    if mask.ndim != 2 or min(mask.shape) < 1:
        raise ValueError(f'The {name} must be an HxW (or HxWxC) binary '
                         f'mask, got shape {tuple(mask.shape)}.')
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if (mask.dtype.kind not in 'uif' or not np.isfinite(mask).all()
            or mask.min() < 0 or mask.max() > 65535):
        raise ValueError(
            f'The {name} has dtype {mask.dtype} and values outside '
            '0..65535; a binary mask holds 0/1 or 0/255 values.')
    top = mask.max()
    threshold = 0.5 if top <= 1 else (
        FOREGROUND_THRESHOLD if top <= 255 else FOREGROUND_THRESHOLD_16BIT)
    return (mask >= threshold).astype(np.uint8)
