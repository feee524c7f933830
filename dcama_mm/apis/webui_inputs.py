# Copyright (c) dcama_mm contributors. All rights reserved.
"""The web page's inputs (:mod:`dcama_mm.apis.webui`) as arrays for
:class:`~dcama_mm.apis.FewShotInferencer`.

Uploaded files are decoded as the inferencer decodes files (images by the
rule of :mod:`~dcama_mm.datasets.transforms.image_modes`, masks with Pillow
unchanged, then the binary-mask rule of
:func:`~dcama_mm.datasets.transforms.binary_mask.to_binary_mask`); a
painted mask is every pixel that the brush touched (alpha > 0 on the image
editor's layers). A class's label box gives the object's label in its
uploaded label masks (:func:`parse_label`). Every problem is a
``ValueError`` whose message is shown on the page.
"""
import os.path as osp
from typing import Optional, Tuple, Union

import numpy as np

from ..datasets.transforms.binary_mask import (empty_mask_message,
                                               label_hint, to_binary_mask)
from ..datasets.transforms.image_modes import (UndecodableFileError,
                                               decode_image, decode_mask)

#: One support slot: the image editor's value (a dict with ``background``
#: and ``layers``, RGB(A) ``uint8`` arrays, or None) and an uploaded mask
#: file path (or None).
SupportInput = Tuple[Optional[dict], Optional[str]]

#: How a label mask's label is given on the page (the message of a label
#: mask uploaded without one).
PAGE_LABEL_OPTIONS = (
    "type the object's label in the class's 'Label in its mask files' box, "
    'or save the mask as 0/255 (object 255)')


def parse_label(text: Union[None, str, int], what: str) -> Optional[int]:
    """A class's label box: blank -> None (0/255 or 0/1 masks), else the
    object's label in its uploaded label masks, a whole number 0..65535.

    Raises:
        ValueError: The text is not a whole number in 0..65535.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        digits = str(text).strip()
        value = int(digits) if digits.isdigit() and digits.isascii() else -1
    if not 0 <= value <= 65535:
        raise ValueError(
            f'The label of {what} must be a whole number in 0..65535 (the '
            f'value of the object in its mask files), got {text!r}; leave '
            'the box empty for 0/255 masks.')
    return value


def read_image_file(path: str, what: str) -> np.ndarray:
    """An uploaded image, decoded as the inferencer decodes image files
    (:func:`~dcama_mm.datasets.transforms.image_modes.decode_image`: any
    mode, 16-bit included): BGR ``uint8`` ``HxWx3``.

    Raises:
        ValueError: The file is not an image.
    """
    with open(path, 'rb') as f:
        content = f.read()
    try:
        return decode_image(content, f'{what} {osp.basename(path)!r}')
    except UndecodableFileError as err:
        raise ValueError(f'The {what} {osp.basename(path)!r} is not an image '
                         '(it cannot be decoded): upload a PNG, JPEG or '
                         'another image file.') from err


def read_mask_file(path: str, what: str,
                   label: Optional[int] = None) -> np.ndarray:
    """An uploaded mask, read as the inferencer reads mask files (Pillow,
    unchanged) through the binary-mask rule: ``uint8`` 0/1 ``HxW``.

    Args:
        path (str): The file.
        what (str): What to call it in messages.
        label (int, optional): The object's label in a label mask (the
            class's label box). Defaults to None.

    Raises:
        ValueError: The file is not an image, a label mask without a
            label (the message says to type it in the label box), or no
            pixel has the label.
    """
    name = f'{what} {osp.basename(path)!r}'
    with open(path, 'rb') as f:
        content = f.read()
    try:
        raw, palette = decode_mask(content, name)
    except UndecodableFileError as err:
        raise ValueError(f'The {name} is not an image (it cannot be '
                         'decoded): upload a PNG mask, 0/255 or 0/1.') from err
    mask = to_binary_mask(raw, name, label=label, palette=palette,
                          label_options=PAGE_LABEL_OPTIONS)
    if not mask.any() and label_hint(raw, PAGE_LABEL_OPTIONS):
        # e.g. 16-bit instance ids: say to type the label, not "empty"
        raise ValueError(empty_mask_message(raw, name, PAGE_LABEL_OPTIONS))
    return mask


def editor_image(value: Optional[dict], what: str) -> Optional[np.ndarray]:
    """The editor's background as BGR ``uint8`` (transparent parts on
    white), or None when it holds no image."""
    img = None if value is None else value.get('background')
    if img is None:
        return None
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f'The {what} must be an RGB(A) uint8 image, got '
                         f'dtype {img.dtype} and shape {tuple(img.shape)}.')
    if img.shape[2] == 4:
        alpha = img[..., 3:].astype(np.uint32)
        rgb = (img[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
        img = rgb.astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1])


def brush_mask(value: Optional[dict], shape: Tuple[int, int],
               what: str) -> Optional[np.ndarray]:
    """The painted mask: 1 wherever a layer's alpha (or, without alpha,
    any channel) is > 0; None when nothing is painted."""
    mask = np.zeros(shape, np.uint8)
    for layer in (value or {}).get('layers') or []:
        layer = np.asarray(layer)
        if layer.shape[:2] != shape:
            raise ValueError(
                f'The painting on the {what} is {layer.shape[1]}x'
                f'{layer.shape[0]} pixels but the image is {shape[1]}x'
                f'{shape[0]}: paint on the image without resizing it.')
        painted = layer[..., 3] if layer.ndim == 3 and layer.shape[2] == 4 \
            else (layer.max(axis=2) if layer.ndim == 3 else layer)
        mask[painted > 0] = 1
    return mask if mask.any() else None


def support_pair(value: Optional[dict], mask_file: Optional[str],
                 what: str, label: Optional[int] = None
                 ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """One slot -> (BGR image, 0/1 mask); None for an empty slot.

    ``label`` is the object's label in an uploaded label mask; a painted
    mask is binary and does not use it.

    Raises:
        ValueError: A mask without an image, an image without a mask, an
            empty mask, a mask of another size, or a file that is not an
            image.
    """
    img = editor_image(value, what)
    if img is None:
        if mask_file:
            raise ValueError(f'The {what} has a mask file but no image: '
                             'upload the image into the editor.')
        return None
    shape = img.shape[:2]
    if mask_file:
        mask = read_mask_file(mask_file, f'mask file of the {what}', label)
        if mask.shape != shape:
            raise ValueError(
                f'The mask file of the {what} is {mask.shape[1]}x'
                f'{mask.shape[0]} pixels but its image is {shape[1]}x'
                f'{shape[0]}: a mask has the size of its image.')
    else:
        mask = brush_mask(value, shape, what)
        if mask is None:
            raise ValueError(f'The {what} has no mask: paint the object with '
                             'the brush, or upload a mask file.')
    if not mask.any():
        raise ValueError(f'The mask of the {what} is empty (no foreground '
                         'pixel): it must show the object.')
    return img, mask
