# Copyright (c) dcama_mm contributors. All rights reserved.
"""The one rule for reading a binary (foreground / background) mask.

Used wherever a mask says "this is the object" rather than carrying a
dataset's class labels: FSS-1000's masks, a user's support masks in
:class:`~dcama_mm.apis.FewShotInferencer`, ``tools/infer.py`` and the web
page, and the tests. COCO-20i's and PASCAL-5i's label PNGs go through their
dataset's lookup table instead.

The rule (``docs/inputs.md`` has it with examples):

1. A label given with the mask (``support_labels=15``, ``--support-label
   15``): the object is every pixel equal to it; a mask without such a
   pixel is refused, naming the values found.
2. Boolean arrays are taken as they are.
3. Integer masks with at most one non-zero value (0/1, 0/255, 0/15,
   0/65535, ...): that value is the object.
4. Label masks, i.e. with two or more non-zero values, of which those
   other than 255 are all below 128 ({0, 1, 2}, {0, 15, 255}), or a
   palette (indexed) PNG: the object's label must be given (rule 1). Only
   a palette PNG with a single label besides 0 and 255 is read without
   one, PASCAL VOC's way: that label is the object, 255 (VOC's object
   boundary) is background. Otherwise the mask is refused with the values
   found and the option to use.
5. Soft masks (every other integer mask, e.g. anti-aliased 0..255 masks):
   a pixel is the object where its value is >= 128, or >= 32768 in a
   16-bit mask with values above 255.
6. Float masks: >= 0.5 when the largest value is at most 1, else as 5.

A colour mask (RGB or RGBA) is first reduced to the largest of its colour
channels (a red object on black is foreground; alpha is ignored); a grey
mask with alpha uses its grey channel. With a label, a colour mask must be
grey (equal channels).
"""
from typing import Optional

import numpy as np

FOREGROUND_THRESHOLD = 128
FOREGROUND_THRESHOLD_16BIT = 32768
#: PASCAL VOC's object-boundary ("ignore") index in label masks.
BOUNDARY_INDEX = 255
#: Non-zero values of a label mask (besides 255) are below this.
LABEL_LIMIT = 128
#: How many values a message lists.
SHOWN_VALUES = 12

#: What the message of an empty support mask adds (no label to give).
EMPTY_HINT = ('The object is the pixels >= 128 of a 0..255 mask, the '
              'non-zero pixels of a mask with one non-zero value, or the '
              'pixels of the label given (see docs/inputs.md).')

#: The options that pick a label, for messages.
LABEL_OPTIONS = ('give the label of the object: support_labels=<label> '
                 '(FewShotInferencer) or --support-label <label> '
                 '(tools/infer.py), or save the mask as 0/255 (object 255)')


def mask_values(mask: np.ndarray) -> np.ndarray:
    """The distinct values of an integer or boolean mask, ascending."""
    if mask.dtype in (np.uint8, np.uint16) and mask.size:
        counts = np.bincount(mask.ravel(), minlength=1)
        return np.flatnonzero(counts).astype(mask.dtype)
    return np.unique(mask)


def format_values(values: np.ndarray) -> str:
    """``0, 1, 2`` (at most :data:`SHOWN_VALUES`, then the count)."""
    shown = ', '.join(str(v) for v in values[:SHOWN_VALUES].tolist())
    if len(values) > SHOWN_VALUES:
        shown += f', ... ({len(values)} distinct values)'
    return shown


def _reduce_channels(mask: np.ndarray, name: str,
                     label: Optional[int]) -> np.ndarray:
    """``HxWxC`` -> ``HxW`` (grey + alpha: grey; colour: largest)."""
    if mask.ndim != 3:
        return mask
    if mask.shape[2] < 3:
        return mask[..., 0]
    colour = mask[..., :3]
    if label is not None:
        if not ((colour[..., 0] == colour[..., 1]).all()
                and (colour[..., 0] == colour[..., 2]).all()):
            raise ValueError(
                f'The {name} is a colour image; a label (here {label}) '
                'needs a single-channel or palette (indexed) label mask.')
        return colour[..., 0]
    return colour.max(axis=2)


def _check_values(mask: np.ndarray, name: str) -> None:
    if mask.ndim != 2 or min(mask.shape) < 1:
        raise ValueError(f'The {name} must be an HxW (or HxWxC) binary '
                         f'mask, got shape {tuple(mask.shape)}.')
    if (mask.dtype.kind not in 'uif' or not np.isfinite(mask).all()
            or mask.min() < 0 or mask.max() > 65535):
        raise ValueError(
            f'The {name} has dtype {mask.dtype} and values outside '
            '0..65535; a binary mask holds 0/1 or 0/255 values.')


def _label_mask(mask: np.ndarray, name: str, label: int) -> np.ndarray:
    """Rule 1: the pixels equal to ``label``."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) \
            or not 0 <= label <= 65535:
        raise ValueError(f'The label of the {name} must be an integer in '
                         f'0..65535, got {label!r}.')
    found = mask == label
    if not found.any():
        raise ValueError(
            f'The {name} has no pixel of label {label}; values found: '
            f'{format_values(mask_values(mask))}.')
    return found.astype(np.uint8)


def _soft_cut(mask: np.ndarray) -> float:
    """Rules 5 and 6: the soft-mask threshold of ``mask``."""
    top = mask.max()
    return 0.5 if (mask.dtype.kind == 'f' and top <= 1) else (
        FOREGROUND_THRESHOLD if top <= 255 else FOREGROUND_THRESHOLD_16BIT)


def _threshold(mask: np.ndarray) -> np.ndarray:
    """Rules 5 and 6: the soft-mask threshold."""
    return (mask >= _soft_cut(mask)).astype(np.uint8)


def label_hint(mask: np.ndarray,
               label_options: str = LABEL_OPTIONS) -> Optional[str]:
    """Why a mask without object may be a label mask, or None.

    A mask with two or more non-zero integer values in which the soft-mask
    cut finds nothing (e.g. 16-bit instance ids {0, 300, 301}) is likely
    a label mask given without its label.

    Args:
        mask (np.ndarray): The mask as read (``HxW`` or ``HxWxC``).
        label_options (str): How the caller's user gives a label.
            Defaults to :data:`LABEL_OPTIONS`.

    Returns:
        str | None: The hint (the cut, the labels and the options), or
        None for a mask without two non-zero integer values.
    """
    mask = _reduce_channels(np.asarray(mask), 'mask', None)
    if mask.dtype.kind not in 'ui' or mask.size == 0:
        return None
    values = mask_values(mask)
    nonzero = values[values > 0]
    if len(nonzero) < 2:
        return None
    bits = '16-bit ' if nonzero.max() > 255 else ''
    return (f'Read as a soft {bits}mask, no pixel reaches its cut '
            f'{_soft_cut(mask):g}. If it is a label mask (class or instance '
            f'ids: {format_values(nonzero)}), {label_options} (see '
            'docs/inputs.md).')


def empty_mask_message(mask: np.ndarray, name: str,
                       label_options: str = LABEL_OPTIONS) -> str:
    """The message for a support mask in which the rule finds no object:
    the values found, and :func:`label_hint` (else :data:`EMPTY_HINT`).

    Args:
        mask (np.ndarray): The mask as read (``HxW`` or ``HxWxC``).
        name (str): What to call it, e.g. ``"support mask #0 'a.png'"``.
        label_options (str): How the caller's user gives a label.
            Defaults to :data:`LABEL_OPTIONS`.

    Returns:
        str: The message.
    """
    values = mask_values(_reduce_channels(np.asarray(mask), name, None))
    return (f'The {name} has no foreground pixel (values found: '
            f'{format_values(values)}): a support mask must show the '
            'object. ' + (label_hint(mask, label_options) or EMPTY_HINT))


def to_binary_mask(mask: np.ndarray,
                   name: str,
                   label: Optional[int] = None,
                   palette: bool = False,
                   label_options: str = LABEL_OPTIONS,
                   require_object: bool = False) -> np.ndarray:
    """A mask read as a file or given as an array -> ``uint8`` 0/1 ``HxW``.

    Args:
        mask (np.ndarray): ``HxW`` or ``HxWxC`` ``bool``, integer or float
            mask with values in 0..65535.
        name (str): What to call it in messages, e.g. ``"mask 'a.png'"``.
        label (int, optional): The object's label (rule 1). Defaults to
            None: rules 2 to 6.
        palette (bool): The mask is a palette PNG's indices (rule 4).
            Defaults to False.
        label_options (str): How the caller's user gives a label, for the
            message about a label mask without one. Defaults to
            :data:`LABEL_OPTIONS` (the API's and the tools' options).
        require_object (bool): Refuse a mask in which the rule finds no
            object (a support mask), with :func:`empty_mask_message`.
            Defaults to False (an empty mask is returned).

    Returns:
        np.ndarray: A new ``uint8`` array, 1 = foreground.

    Raises:
        ValueError: Not a 2-D (or 3-D) mask, values outside 0..65535, a
            label mask without a label (naming the values found and the
            options), a label that no pixel has, or (``require_object``)
            no object.
    """
    mask = _reduce_channels(mask, name, label)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    _check_values(mask, name)
    binary = _binary(mask, name, label, palette, label_options)
    if require_object and not binary.any():
        raise ValueError(empty_mask_message(mask, name, label_options))
    return binary


def _binary(mask: np.ndarray, name: str, label: Optional[int],
            palette: bool, label_options: str) -> np.ndarray:
    """Rules 1 and 3 to 6 on a checked ``HxW`` mask."""
    if label is not None:
        return _label_mask(mask, name, label)
    if mask.dtype.kind == 'f':
        return _threshold(mask)
    values = mask_values(mask)
    nonzero = values[values > 0]
    if len(nonzero) <= 1:
        return (mask != 0).astype(np.uint8)
    labels = nonzero[nonzero != BOUNDARY_INDEX]
    if not palette and labels.max() >= LABEL_LIMIT:
        return _threshold(mask)
    if palette and len(labels) == 1:
        return (mask == labels[0]).astype(np.uint8)
    what = 'a palette (indexed) PNG' if palette else 'a label mask'
    raise ValueError(
        f'The {name} is {what} with the values {format_values(values)}: '
        'it does not say which label is the object. To use it, '
        f'{label_options}.')
