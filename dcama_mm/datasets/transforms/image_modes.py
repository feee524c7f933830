# Copyright (c) dcama_mm contributors. All rights reserved.
"""The one rule for reading an image file of any mode as ``uint8`` BGR.

The network takes 8-bit colour images; files come in other modes too. Every
image the package reads from a file (dataset images in
:class:`~dcama_mm.datasets.transforms.LoadEpisode`, queries and supports of
:class:`~dcama_mm.apis.FewShotInferencer`, ``tools/infer.py`` and the web
page) goes through :func:`decode_image`, which applies this rule:

- 8-bit grey, colour, palette ('P', its colours), 1-bit (0 -> 0,
  1 -> 255) and CMYK images are read as a viewer shows them; grey is
  repeated into 3 channels. EXIF orientation is applied: a phone photo
  stored as landscape pixels with an Orientation tag of 5 to 8 is read
  upright, its width and height swapped (:func:`image_file_size` gives
  that size from the file's header, for the datasets' size checks).
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
from typing import BinaryIO, NamedTuple, Optional, Tuple, Union

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


#: The EXIF tag of the orientation (1 = upright as stored).
EXIF_ORIENTATION_TAG = 0x0112
#: Orientations that turn the picture by 90 degrees when it is shown (its
#: width and height swap); 2 to 4 flip or turn it by 180 degrees.
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


class UndecodableFileError(ValueError):
    """A file that no decoder reads (corrupt, or not an image)."""


class FileSize(NamedTuple):
    """The size of an image file, as stored and as displayed.

    Attributes:
        stored (tuple[int, int]): ``(h, w)`` of the pixels in the file
            (what a mask file is read as: masks are read unchanged).
        displayed (tuple[int, int]): ``(h, w)`` as the image is shown and
            read (:func:`decode_image`), with the EXIF orientation applied.
        orientation (int): The EXIF Orientation tag, 1 when there is none.
    """

    stored: Tuple[int, int]
    displayed: Tuple[int, int]
    orientation: int


def _exif_orientation(img: Image.Image) -> int:
    """The EXIF Orientation tag of an opened file (1 if none), from its
    header; the pixels are not decoded. XMP orientation is not read (cv2,
    the default decoder, does not apply it)."""
    tags = getattr(img, 'tag_v2', None)  # TIFF: the tag is in its IFD
    if tags is not None:
        value = tags.get(EXIF_ORIENTATION_TAG)
    elif img.info.get('exif'):  # JPEG, WebP, PNG (eXIf chunk)
        exif = Image.Exif()
        exif.load(img.info['exif'])
        value = exif.get(EXIF_ORIENTATION_TAG)
    else:
        value = None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _turned(size: Tuple[int, int], orientation: int) -> Tuple[int, int]:
    """``size`` with its two sides swapped for orientations 5 to 8."""
    return size[::-1] if orientation in TRANSPOSING_ORIENTATIONS else size


def image_file_size(file: Union[str, BinaryIO]) -> FileSize:
    """The size of an image file from its header, as stored and as shown.

    The one place the package takes an image's size without reading its
    pixels (the size checks of datasets): :func:`decode_image` and
    :func:`decode_mask` read the file at the ``displayed`` size.

    Args:
        file (str | BinaryIO): A path or an open binary file.

    Returns:
        FileSize: ``stored``, ``displayed`` (h, w) and the orientation.

    Raises:
        OSError: The file is not an image (Pillow cannot open it).
    """
    with Image.open(file) as img:
        orientation = _exif_orientation(img)
        width, height = img.size
        if getattr(img, 'tag_v2', None) is not None:
            # Pillow gives a TIFF's size as displayed (it turns it on load)
            width, height = _turned((width, height), orientation)
    stored = (height, width)
    return FileSize(stored, _turned(stored, orientation), orientation)


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an ``HxW[xC]`` array stored with an EXIF orientation upright,
    as :func:`PIL.ImageOps.exif_transpose` does."""
    steps = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    step = steps.get(orientation)
    return array if step is None else np.ascontiguousarray(step(array))


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


def _pillow_array(content: bytes, exif_orientation: bool = True
                  ) -> np.ndarray:
    """Decode with Pillow: wide modes as their samples, the others as
    colours (alpha dropped, EXIF orientation applied unless told not to),
    BGR."""
    with io.BytesIO(content) as buff:
        img = Image.open(buff)
        if exif_orientation:
            img = ImageOps.exif_transpose(img)
        if img.mode in PILLOW_WIDE_MODES:
            return np.array(img)
        if img.mode == 'LA':
            return np.array(img.getchannel('L'))
        if img.mode == 'L':
            return np.array(img)
        return np.ascontiguousarray(np.array(img.convert('RGB'))[..., ::-1])


def decode_image(content: bytes,
                 name: str,
                 backend: str = 'cv2',
                 exif_orientation: bool = True) -> np.ndarray:
    """Decode an image file's bytes to ``uint8`` ``HxWx3`` BGR by the rule.

    Args:
        content (bytes): The file's bytes.
        name (str): What to call it in messages, e.g. ``"image 'a.png'"``.
        backend (str): 'cv2' (the default; files cv2 cannot decode, such
            as 32-bit TIFFs, are tried with Pillow), 'pillow', or another
            :func:`mmcv.imfrombytes` backend (its 'color' decoding).
        exif_orientation (bool): Turn the image upright by its EXIF
            orientation, as it is displayed (phone photos). False: the
            pixels as stored, the space of benchmark annotations (COCO's
            polygons) and what the reference DCAMA reads. Defaults to True.

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
                flag = CV2_COLOR_ANYDEPTH if exif_orientation else (
                    CV2_COLOR_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION)
                img = mmcv.imfrombytes(content, flag=flag, backend='cv2')
            elif attempt == 'pillow':
                img = _pillow_array(content, exif_orientation)
            else:
                img = mmcv.imfrombytes(
                    content,
                    flag='color' if exif_orientation else
                    'color_ignore_orientation',
                    backend=attempt)
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


def decode_mask(content: bytes,
                name: str,
                backend: str = 'pillow',
                exif_orientation: bool = True) -> Tuple[np.ndarray, bool]:
    """Decode a mask file's bytes unchanged (palette PNGs: their indices),
    turned upright by its EXIF orientation as an image is.

    Args:
        content (bytes): The file's bytes.
        name (str): What to call it in messages.
        backend (str): A :func:`mmcv.imfrombytes` backend. Defaults to
            'pillow' (keeps the indices of palette PNGs).
        exif_orientation (bool): Turn it by its EXIF orientation, as
            :func:`decode_image` turns images. Defaults to True.

    Returns:
        tuple[np.ndarray, bool]: The samples as stored (colour channels in
        BGR order), turned by the file's EXIF orientation (if any), and
        whether the file is a palette (indexed) image whose samples are
        indices (only known with the 'pillow' backend).

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
    palette, orientation = False, 1
    try:
        with io.BytesIO(content) as buff, Image.open(buff) as img:
            palette = backend == 'pillow' and img.mode in PALETTE_MODES
            # Pillow and cv2 turn a TIFF upright themselves
            if exif_orientation and not (img.format == 'TIFF'
                                         and backend in ('pillow', 'cv2')):
                orientation = _exif_orientation(img)
    except OSError:  # a format only the backend reads: no tag known
        pass
    return apply_orientation(raw, orientation), palette
