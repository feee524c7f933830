# Copyright (c) dcama_mm contributors. All rights reserved.
"""Building blocks of the synthetic few-shot datasets.

Every class has a fixed appearance (two colours and a texture: stripes at a
class-specific angle and period, a checkerboard, dots or rings), painted on
random shapes over a smooth, varied background. A model that learns "find
the pixels that look like the support's foreground" can segment classes it
has never seen, so few-shot segmentation is learnable on these images while
they stay tiny.

All functions take an explicit ``numpy.random.Generator`` and never touch
global random state.
"""
import colorsys
import os
import os.path as osp
from typing import Callable, List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np


class ClassAppearance(NamedTuple):
    """The look of one synthetic class.

    Attributes:
        color_a (np.ndarray): First RGB colour (float32, 0-255).
        color_b (np.ndarray): Second RGB colour (float32, 0-255).
        pattern (int): Index into :data:`PATTERNS`.
        angle (float): Orientation of the pattern in radians.
        period (float): Spatial period of the pattern in pixels.
    """
    color_a: np.ndarray
    color_b: np.ndarray
    pattern: int
    angle: float
    period: float


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v),
                      dtype=np.float32) * 255.0


def class_appearance(class_id: int) -> ClassAppearance:
    """The fixed appearance of a class (the same in every dataset).

    Hues follow the golden-ratio sequence, so neighbouring class indices look
    different, and every pattern type occurs among the classes of each
    COCO-20i/PASCAL-5i fold.

    Args:
        class_id (int): Class index (>= 0).

    Returns:
        ClassAppearance: The class's colours and texture.
    """
    hue = (class_id * 0.618034) % 1.0
    color_a = _hsv(hue, 0.85, 0.95)
    color_b = _hsv(hue + 0.5, 0.6, 0.35 + 0.3 * ((class_id // 7) % 2))
    pattern = (class_id + class_id // 4) % len(PATTERNS)
    angle = float((class_id * 47) % 180) * np.pi / 180.0
    period = 4.0 + (class_id * 5) % 5
    return ClassAppearance(color_a, color_b, pattern, angle, period)


def _rotated_coords(h: int, w: int, angle: float) -> Tuple[np.ndarray, ...]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    return u, v


def _stripes(h: int, w: int, app: ClassAppearance) -> np.ndarray:
    u, _ = _rotated_coords(h, w, app.angle)
    return (np.sin(2 * np.pi * u / app.period) > 0).astype(np.float32)


def _checker(h: int, w: int, app: ClassAppearance) -> np.ndarray:
    u, v = _rotated_coords(h, w, app.angle)
    cells = np.floor(u / app.period) + np.floor(v / app.period)
    return (cells % 2).astype(np.float32)


def _dots(h: int, w: int, app: ClassAppearance) -> np.ndarray:
    u, v = _rotated_coords(h, w, app.angle)
    p = app.period * 1.5
    du = (u % p) - p / 2
    dv = (v % p) - p / 2
    return (du**2 + dv**2 < (p / 3)**2).astype(np.float32)


def _rings(h: int, w: int, app: ClassAppearance) -> np.ndarray:
    u, v = _rotated_coords(h, w, app.angle)
    r = np.sqrt((u - u.mean())**2 + (v - v.mean())**2)
    return (np.sin(2 * np.pi * r / app.period) > 0).astype(np.float32)


#: Texture generators: ``(h, w, appearance) -> HxW weights in [0, 1]``.
PATTERNS: Tuple[Callable[[int, int, ClassAppearance], np.ndarray], ...] = (
    _stripes, _checker, _dots, _rings)


def class_texture(class_id: int, h: int, w: int,
                  rng: np.random.Generator) -> np.ndarray:
    """An HxWx3 RGB texture of a class, with a little random variation.

    Args:
        class_id (int): The class.
        h (int): Height.
        w (int): Width.
        rng (np.random.Generator): Random generator (brightness, phase
            and noise).

    Returns:
        np.ndarray: float32 RGB image in [0, 255].
    """
    app = class_appearance(class_id)
    shift = rng.integers(0, 16, size=2)
    weights = PATTERNS[app.pattern](h + 16, w + 16, app)
    weights = weights[shift[0]:shift[0] + h, shift[1]:shift[1] + w]
    tex = (weights[..., None] * app.color_a +
           (1 - weights[..., None]) * app.color_b)
    tex = tex * rng.uniform(0.85, 1.15) + rng.normal(0, 6, size=tex.shape)
    return np.clip(tex, 0, 255).astype(np.float32)


def random_background(h: int, w: int,
                      rng: np.random.Generator) -> np.ndarray:
    """A smooth, low-saturation background with mild noise.

    Args:
        h (int): Height.
        w (int): Width.
        rng (np.random.Generator): Random generator.

    Returns:
        np.ndarray: float32 RGB image in [0, 255].
    """
    c0 = _hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.3, 0.9))
    c1 = _hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.3, 0.9))
    angle = rng.uniform(0, 2 * np.pi)
    u, _ = _rotated_coords(h, w, angle)
    t = (u - u.min()) / max(float(u.max() - u.min()), 1.0)
    img = t[..., None] * c1 + (1 - t[..., None]) * c0
    # low-frequency blotches
    noise = rng.normal(0, 1, size=(max(h // 16, 2), max(w // 16, 2), 3))
    noise = cv2.resize(noise.astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    img = img + 18 * noise + rng.normal(0, 4, size=img.shape)
    return np.clip(img, 0, 255).astype(np.float32)


def random_polygon(h: int, w: int, rng: np.random.Generator,
                   center: Tuple[float, float],
                   radius: float) -> np.ndarray:
    """A random star-shaped polygon.

    Args:
        h (int): Image height (vertices are clipped to the image).
        w (int): Image width.
        rng (np.random.Generator): Random generator.
        center (tuple[float, float]): Centre (x, y).
        radius (float): Mean radius in pixels.

    Returns:
        np.ndarray: ``[N, 2]`` float64 vertices (x, y).
    """
    n = int(rng.integers(5, 12))
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=n))
    radii = radius * rng.uniform(0.6, 1.2, size=n)
    xs = np.clip(center[0] + radii * np.cos(angles), 0, w - 1)
    ys = np.clip(center[1] + radii * np.sin(angles), 0, h - 1)
    return np.round(np.stack([xs, ys], axis=1), 2)


def random_blob(h: int, w: int, rng: np.random.Generator,
                center: Tuple[float, float], radius: float) -> np.ndarray:
    """A random blob: the union of a few ellipses.

    Args:
        h (int): Height.
        w (int): Width.
        rng (np.random.Generator): Random generator.
        center (tuple[float, float]): Centre (x, y).
        radius (float): Rough radius in pixels.

    Returns:
        np.ndarray: ``uint8`` HxW mask (0/1).
    """
    mask = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        cx = center[0] + rng.normal(0, radius / 3)
        cy = center[1] + rng.normal(0, radius / 3)
        axes = (max(int(radius * rng.uniform(0.4, 0.8)), 2),
                max(int(radius * rng.uniform(0.4, 0.8)), 2))
        cv2.ellipse(mask, (int(cx), int(cy)), axes,
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


def fill_polygons(h: int, w: int,
                  polygons: Sequence[np.ndarray]) -> np.ndarray:
    """Rasterise polygons into a 0/1 ``uint8`` mask with OpenCV.

    Args:
        h (int): Height.
        w (int): Width.
        polygons (Sequence[np.ndarray]): ``[N, 2]`` (x, y) vertices each.

    Returns:
        np.ndarray: HxW ``uint8`` mask.
    """
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polygons], 1)
    return mask


def place_objects(h: int, w: int, num: int,
                  rng: np.random.Generator) -> List[Tuple[Tuple[float, float],
                                                          float]]:
    """Centres and radii of ``num`` objects that overlap little.

    Args:
        h (int): Height.
        w (int): Width.
        num (int): Number of objects.
        rng (np.random.Generator): Random generator.

    Returns:
        list[tuple]: ``((x, y), radius)`` per object.
    """
    placed: List[Tuple[Tuple[float, float], float]] = []
    base = min(h, w) / (1.6 + 0.9 * np.sqrt(num))
    for _ in range(num):
        best = None
        for _ in range(20):
            r = base * rng.uniform(0.7, 1.2)
            c = (rng.uniform(r * 0.6, w - r * 0.6),
                 rng.uniform(r * 0.6, h - r * 0.6))
            gap = min([
                np.hypot(c[0] - p[0][0], c[1] - p[0][1]) - p[1] - r
                for p in placed
            ] or [np.inf])
            if best is None or gap > best[0]:
                best = (gap, c, r)
            if gap > 0:
                break
        placed.append((best[1], best[2]))
    return placed


def paint(img: np.ndarray, mask: np.ndarray, texture: np.ndarray) -> None:
    """Paint ``texture`` into ``img`` where ``mask`` is set (in place on the
    caller's own canvas).

    Args:
        img (np.ndarray): float32 HxWx3 canvas, modified.
        mask (np.ndarray): HxW mask.
        texture (np.ndarray): float32 HxWx3 texture.
    """
    sel = mask.astype(bool)
    img[sel] = texture[sel]


def save_rgb(path: str, img: np.ndarray, quality: int = 95) -> None:
    """Write an RGB float/uint8 image (JPEG or PNG by extension).

    Args:
        path (str): Output file; its folder is created.
        img (np.ndarray): HxWx3 RGB image.
        quality (int): JPEG quality. Defaults to 95.
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    bgr = np.clip(img, 0, 255).astype(np.uint8)[..., ::-1]
    if not cv2.imwrite(path, bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f'Cannot write {path!r}.')


def save_mask(path: str, mask: np.ndarray) -> None:
    """Write a single-channel ``uint8`` PNG.

    Args:
        path (str): Output file; its folder is created.
        mask (np.ndarray): HxW ``uint8`` array.
    """
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    if not cv2.imwrite(path, mask.astype(np.uint8)):
        raise OSError(f'Cannot write {path!r}.')


def one_object_image(class_id: int, size_range: Tuple[int, int],
                     rng: np.random.Generator
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """An image of one object of ``class_id`` on a random background.

    Args:
        class_id (int): The object's appearance (:func:`class_texture`).
        size_range (tuple[int, int]): Range of the height and width.
        rng (np.random.Generator): The random source.

    Returns:
        tuple: The RGB ``uint8`` image and the object's boolean mask.
    """
    h, w = (int(s) for s in rng.integers(
        size_range[0], size_range[1] + 1, size=2))
    img = random_background(h, w, rng)
    (center, radius), = place_objects(h, w, 1, rng)
    obj = random_blob(h, w, rng, center, radius)
    paint(img, obj, class_texture(class_id, h, w, rng))
    return img, obj
