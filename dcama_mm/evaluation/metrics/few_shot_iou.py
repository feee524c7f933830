# Copyright (c) dcama_mm contributors. All rights reserved.
"""The arithmetic of the few-shot IoU metric, as pure functions."""
from typing import Any, Dict, Sequence, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

#: Column order of the per-episode pixel counts.
AREA_KEYS = ('intersect_fg', 'union_fg', 'intersect_bg', 'union_bg')


def _to_numpy(array: ArrayLike, name: str) -> np.ndarray:
    """Convert a mask to a numpy array (on CPU), squeezing a channel dim."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(
            f'{name} must be a mask of shape (H, W) or (1, H, W), got shape '
            f'{tuple(array.shape)}.')
    return array


def intersect_and_union_fb(pred: ArrayLike,
                           label: ArrayLike,
                           ignore_index: int = 255) -> np.ndarray:
    """Foreground and background intersection and union of one episode.

    Pixels whose label equals ``ignore_index`` are left out of all four
    counts (e.g. PASCAL's object boundaries).

    Args:
        pred (np.ndarray | torch.Tensor): Predicted mask, ``(H, W)`` or
            ``(1, H, W)``, 1 = foreground, 0 = background.
        label (np.ndarray | torch.Tensor): Ground-truth mask of the same
            size, 1 = foreground, 0 = background, ``ignore_index`` = ignored.
        ignore_index (int): Label value that is ignored. Defaults to 255.

    Returns:
        np.ndarray: ``int64`` array ``[I_fg, U_fg, I_bg, U_bg]`` of pixel
        counts (see :data:`AREA_KEYS`).
    """
    pred = _to_numpy(pred, 'pred')
    label = _to_numpy(label, 'label')
    if pred.shape != label.shape:
        raise ValueError(
            f'pred and label must have the same size, got {pred.shape} and '
            f'{label.shape}.')
    valid = label != ignore_index
    pred_fg = (pred == 1) & valid
    pred_bg = (pred != 1) & valid
    label_fg = (label == 1) & valid
    label_bg = (label != 1) & valid
    return np.array([
        np.count_nonzero(pred_fg & label_fg),
        np.count_nonzero(pred_fg | label_fg),
        np.count_nonzero(pred_bg & label_bg),
        np.count_nonzero(pred_bg | label_bg),
    ],
                    dtype=np.int64)


def accumulate_class_areas(episode_classes: Sequence[int],
                           areas: ArrayLike,
                           class_ids: Sequence[int]) -> np.ndarray:
    """Sum per-episode pixel counts into per-class totals.

    Args:
        episode_classes (Sequence[int]): Class id of each episode, length N.
        areas (np.ndarray | torch.Tensor): ``[N, 4]`` per-episode counts as
            returned by :func:`intersect_and_union_fb`.
        class_ids (Sequence[int]): The classes to report, length C. Episodes
            of other classes are not counted.

    Returns:
        np.ndarray: ``int64`` array ``[C, 4]``; row ``j`` holds
        ``I_fg, U_fg, I_bg, U_bg`` of ``class_ids[j]`` summed over its
        episodes.
    """
    episode_classes = np.asarray(episode_classes, dtype=np.int64).reshape(-1)
    if isinstance(areas, torch.Tensor):
        areas = areas.detach().cpu().numpy()
    areas = np.asarray(areas, dtype=np.int64).reshape(-1, len(AREA_KEYS))
    if len(areas) != len(episode_classes):
        raise ValueError(
            f'Got {len(episode_classes)} episode classes but {len(areas)} '
            'rows of areas; they must match.')
    class_ids = [int(c) for c in class_ids]
    totals = np.zeros((len(class_ids), len(AREA_KEYS)), dtype=np.int64)
    for row, class_id in enumerate(class_ids):
        totals[row] = areas[episode_classes == class_id].sum(axis=0)
    return totals


def few_shot_iou(episode_classes: Sequence[int], areas: ArrayLike,
                 class_ids: Sequence[int]) -> Dict[str, Any]:
    """mIoU and FB-IoU of a set of episodes (HSNet / DCAMA protocol).

    With ``I_fg[c], U_fg[c], I_bg[c], U_bg[c]`` summed over the episodes of
    class ``c`` (see ``docs/protocol.md``):

    - ``mIoU = mean_c I_fg[c] / max(U_fg[c], 1)`` over ``class_ids``; a
      class without episodes counts as 0, as in the reference.
    - ``FB-IoU = mean(sum_c I_fg / sum_c U_fg, sum_c I_bg / sum_c U_bg)``
      (denominators clamped to 1).

    Args:
        episode_classes (Sequence[int]): Class id of each episode, length N.
        areas (np.ndarray | torch.Tensor): ``[N, 4]`` per-episode counts as
            returned by :func:`intersect_and_union_fb`.
        class_ids (Sequence[int]): The fold's classes the means run over.

    Returns:
        dict: ``mIoU`` and ``FB-IoU`` (floats, in %), ``class_iou``
        (``float64`` array of the foreground IoU of each of ``class_ids``,
        in %), ``class_episodes`` (``int64`` array, episodes per class) and
        ``num_episodes`` (int, episodes of ``class_ids``).
    """
    if len(class_ids) == 0:
        raise ValueError('class_ids is empty: give the classes to report.')
    episode_classes = np.asarray(episode_classes, dtype=np.int64).reshape(-1)
    totals = accumulate_class_areas(episode_classes, areas, class_ids)
    class_iou = totals[:, 0] / np.maximum(totals[:, 1], 1)
    sums = totals.sum(axis=0)
    fg_iou = sums[0] / max(sums[1], 1)
    bg_iou = sums[2] / max(sums[3], 1)
    class_episodes = np.array(
        [np.count_nonzero(episode_classes == int(c)) for c in class_ids],
        dtype=np.int64)
    return {
        'mIoU': float(class_iou.mean() * 100),
        'FB-IoU': float((fg_iou + bg_iou) / 2 * 100),
        'class_iou': class_iou * 100,
        'class_episodes': class_episodes,
        'num_episodes': int(class_episodes.sum()),
    }


def bootstrap_std_error(episode_classes: Sequence[int],
                        areas: ArrayLike,
                        class_ids: Sequence[int],
                        num_resamples: int = 1000,
                        seed: int = 0,
                        chunk: int = 100) -> Dict[str, float]:
    """Bootstrap standard error of mIoU and FB-IoU over the episodes.

    Draws ``num_resamples`` resamples of the N episodes with replacement
    (``numpy.random.default_rng(seed)``), computes mIoU and FB-IoU of each
    exactly as :func:`few_shot_iou` does, and returns the standard deviation
    of each over the resamples (``ddof=1``). It estimates how far the
    figure of another draw of as many episodes would typically be.

    Args:
        episode_classes (Sequence[int]): Class id of each episode, length N.
        areas (np.ndarray | torch.Tensor): ``[N, 4]`` per-episode counts as
            returned by :func:`intersect_and_union_fb`.
        class_ids (Sequence[int]): The fold's classes the means run over.
        num_resamples (int): Number of resamples (>= 2). Defaults to 1000.
        seed (int): Seed of the resampling. Defaults to 0.
        chunk (int): Resamples computed at once (memory). Defaults to 100.

    Returns:
        dict: ``mIoU`` and ``FB-IoU``: the standard errors, in % points
        (0.0 without episodes).
    """
    if isinstance(num_resamples, bool) or not isinstance(
            num_resamples, int) or num_resamples < 2:
        raise ValueError(f'num_resamples must be an integer >= 2, but got '
                         f'{num_resamples!r}.')
    episode_classes = np.asarray(episode_classes, dtype=np.int64).reshape(-1)
    if isinstance(areas, torch.Tensor):
        areas = areas.detach().cpu().numpy()
    areas = np.asarray(areas, dtype=np.float64).reshape(-1, len(AREA_KEYS))
    num = len(episode_classes)
    if len(areas) != num:
        raise ValueError(
            f'Got {num} episode classes but {len(areas)} rows of areas; they '
            'must match.')
    if num == 0:
        return {'mIoU': 0.0, 'FB-IoU': 0.0}
    class_ids = np.asarray([int(c) for c in class_ids], dtype=np.int64)
    # per episode, its counts in the column block of its class: [N, C * 4]
    onehot = episode_classes[:, None] == class_ids[None, :]
    per_class = (onehot[:, :, None] * areas[:, None, :]).reshape(num, -1)
    rng = np.random.default_rng(seed)
    miou, fbiou = [], []
    for start in range(0, num_resamples, chunk):
        size = min(chunk, num_resamples - start)
        picks = rng.integers(num, size=(size, num))
        weights = np.zeros((size, num))
        np.add.at(weights, (np.arange(size)[:, None], picks), 1.0)
        totals = (weights @ per_class).reshape(size, len(class_ids), 4)
        class_iou = totals[..., 0] / np.maximum(totals[..., 1], 1)
        sums = totals.sum(axis=1)
        fg = sums[:, 0] / np.maximum(sums[:, 1], 1)
        bg = sums[:, 2] / np.maximum(sums[:, 3], 1)
        miou.append(class_iou.mean(axis=1) * 100)
        fbiou.append((fg + bg) / 2 * 100)
    return {
        'mIoU': float(np.concatenate(miou).std(ddof=1)),
        'FB-IoU': float(np.concatenate(fbiou).std(ddof=1)),
    }
