# Copyright (c) dcama_mm contributors. All rights reserved.
"""The one rule for reading an image file of any mode as ``uint8`` BGR.

The network takes 8-bit colour images; files come in other modes too. Every
image the package reads from a file (dataset images in
:class:`~dcama_mm.datasets.transforms.LoadEpisode`, queries and supports of
:class:`~dcama_mm.apis.FewShotInferencer`, ``tools/infer.py`` and the web
page) goes through :func:`decode_image`, which applies this rule:

- 8-bit grey, colour, palette ('P', its colours), 1-bit (0 -> 0,
  1 -> 255) and CMYK images are read as a viewer shows them; grey is
  repeated into 3 channels. EXIF orientation is applied.
- Alpha is ignored (the stored colours are read), for grey + alpha as for
  RGBA.
- 16-bit samples (grey or colour PNG/TIFF) are scaled by the fixed factor
  255 / 65535, rounded: ``v8 = round(v16 / 257)``. 65535 is white and an
  8-bit image saved as 16 bits (``v * 257``) reads back exactly. The
  factor does not depend on the image's content, so a support and a query
  of the same scene read alike (a per-image stretch would not); a 12-bit
  camera image stored in 16 bits therefore reads dark: stretch it to the
  full range yourself if you want it brighter.
- 32-bit integer samples (Pillow mode 'I') in 0..65535 are taken as 16-bit
  ones; others are refused.
- Floating-point samples (e.g. a 32-bit float TIFF) in 0..1 are scaled by
  255 and rounded; other ranges are refused (the message gives the range).

Arrays passed in memory are not converted: they must already be ``uint8``
(see :func:`~dcama_mm.datasets.transforms.load_episode.as_image_array`).
"""
import io
from typing import Optional, Tuple

import cv2
import mmcv
import numpy as np
from PIL import Image, ImageOps

#: cv2's flags for colour images at their own bit depth (EXIF orientation
#: is applied, as with ``IMREAD_COLOR``).
CV2_COLOR_ANYDEPTH = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH

#: Pillow modes whose samples are not 8 bits (read as arrays, then scaled).
PILLOW_WIDE_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I', 'F')

#: Pillow modes of palette (indexed) images.
PALETTE_MODES = ('P', 'PA')


class UndecodableFileError(ValueError):
    """A file that no decoder reads (corrupt, or not an image)."""


def to_uint8_image(img: np.ndarray, name: str) -> np.ndarray:
    """Scale a decoded image to ``uint8`` by the rule of this module.

    Args:
        img (np.ndarray): ``HxW`` or ``HxWxC`` (C = 1, 3 or 4; colour in
            BGR order), of any integer or float dtype.
        name (str): What to call it in messages, e.g. ``"image 'a.tif'"``.

    Returns:
        np.ndarray: ``uint8`` ``HxWx3`` BGR (the input itself when it is
        already so).

    Raises:
        ValueError: Samples outside the ranges of the rule.
    """
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    elif img.ndim == 3 and img.shape[2] in (1, 2):
        img = img[..., 0]
    if img.dtype != np.uint8:
        img = _scale_samples(img, name)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img


def _scale_samples(img: np.ndarray, name: str) -> np.ndarray:
    """Non-8-bit samples -> ``uint8`` (16 bit: /257; float 0..1: *255)."""
    if img.dtype.kind == 'f':
        low, high = (float(img.min()), float(img.max())) if img.size else (
            0.0, 0.0)
        if not np.isfinite(img).all() or low < 0 or high > 1:
            raise ValueError(
                f'The {name} has floating-point samples in [{low:g}, '
                f'{high:g}]; float images must hold values in 0..1. Save it '
                'as an 8- or 16-bit image, or scale it to 0..1.')
        return np.rint(img * 255).astype(np.uint8)
    if img.dtype.kind in 'ui':
        if img.dtype != np.uint16 and img.size and (img.min() < 0
                                                    or img.max() > 65535):
            raise ValueError(
                f'The {name} has {img.dtype} samples in [{img.min()}, '
                f'{img.max()}]; integer images must hold 8-bit or 16-bit '
                'values (0..65535).')
        wide = img.astype(np.uint32)
        return ((wide + 128) // 257).astype(np.uint8)
    raise ValueError(f'The {name} has samples of type {img.dtype}, which '
                     'is not an image type.')


def _pillow_array(content: bytes) -> np.ndarray:
    """Decode with Pillow: wide modes as their samples, the others as
    colours (alpha dropped, EXIF orientation applied), BGR."""
    with io.BytesIO(content) as buff:
        img = ImageOps.exif_transpose(Image.open(buff))
        if img.mode in PILLOW_WIDE_MODES:
            return np.array(img)
        if img.mode == 'LA':
            return np.array(img.getchannel('L'))
        if img.mode == 'L':
            return np.array(img)
        return np.ascontiguousarray(np.array(img.convert('RGB'))[..., ::-1])


def decode_image(content: bytes, name: str, backend: str = 'cv2'
                 ) -> np.ndarray:
    """Decode an image file's bytes to ``uint8`` ``HxWx3`` BGR by the rule.

    Args:
        content (bytes): The file's bytes.
        name (str): What to call it in messages, e.g. ``"image 'a.png'"``.
        backend (str): 'cv2' (the default; files cv2 cannot decode, such
            as 32-bit TIFFs, are tried with Pillow), 'pillow', or another
            :func:`mmcv.imfrombytes` backend (its 'color' decoding).

    Returns:
        np.ndarray: The image.

    Raises:
        UndecodableFileError: The file is not an image (or corrupt).
        ValueError: Its samples are outside the rule's ranges.
    """
    img: Optional[np.ndarray] = None
    errors = []
    attempts = {'cv2': ('cv2', 'pillow'), 'pillow': ('pillow', )}.get(
        backend, (backend, ))
    for attempt in attempts:
        try:
            if attempt == 'cv2':
                img = mmcv.imfrombytes(
                    content, flag=CV2_COLOR_ANYDEPTH, backend='cv2')
            elif attempt == 'pillow':
                img = _pillow_array(content)
            else:
                img = mmcv.imfrombytes(content, flag='color', backend=attempt)
        except Exception as err:  # decoders raise various types
            img = None
            errors.append(err)
        if img is not None and img.size > 0:
            break
    if img is None or img.size == 0 or img.ndim not in (2, 3):
        # the first decoder's complaint (a fallback's would mislead)
        reason = f': {errors[0]}' if len(errors) == len(attempts) else ''
        raise UndecodableFileError(f'Cannot decode the {name}{reason}; the '
                                   'file is corrupt or not an image.')
    return to_uint8_image(img, name)


def decode_mask(content: bytes, name: str, backend: str = 'pillow'
                ) -> Tuple[np.ndarray, bool]:
    """Decode a mask file's bytes unchanged (palette PNGs: their indices).

    Args:
        content (bytes): The file's bytes.
        name (str): What to call it in messages.
        backend (str): A :func:`mmcv.imfrombytes` backend. Defaults to
            'pillow' (keeps the indices of palette PNGs).

    Returns:
        tuple[np.ndarray, bool]: The samples as stored (colour channels in
        BGR order), and whether the file is a palette (indexed) image whose
        samples are indices (only known with the 'pillow' backend).

    Raises:
        UndecodableFileError: The file is not an image (or corrupt).
    """
    try:
        raw = mmcv.imfrombytes(content, flag='unchanged', backend=backend)
    except Exception as err:  # decoders raise various types
        raise UndecodableFileError(
            f'Cannot decode the {name}: {err}; the file is corrupt or not '
            'an image.') from err
    if raw is None or raw.size == 0:
        raise UndecodableFileError(f'Cannot decode the {name}; the file is '
                                   'corrupt or not an image.')
    palette = False
    if backend == 'pillow':
        with io.BytesIO(content) as buff:
            palette = Image.open(buff).mode in PALETTE_MODES
    return raw, palette
