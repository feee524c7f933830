# Copyright (c) dcama_mm contributors. All rights reserved.
"""Helpers of the few-shot visualizer: masks from data samples, the episode
IoU in titles, a drawing-only visualizer for the inferencer."""
import time
from typing import Optional

import numpy as np
import torch
from mmengine.structures import PixelData
from mmengine.visualization import Visualizer

from mmseg.registry import VISUALIZERS
from ..evaluation.metrics.few_shot_iou_metric import intersect_and_union_fb


def to_mask(value, name: str) -> np.ndarray:
    """A ``(H, W)`` numpy mask from a tensor / array / ``PixelData``."""
    if isinstance(value, PixelData):
        value = value.data
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    if value.ndim == 3 and value.shape[0] == 1:
        value = value[0]
    if value.ndim != 2:
        raise ValueError(f'{name} must be a (H, W) or (1, H, W) mask, got '
                         f'shape {value.shape}.')
    return value


def episode_iou(pred: np.ndarray,
                gt: np.ndarray,
                ignore_index: int = 255) -> float:
    """Foreground IoU of one episode in %, pixels of ``ignore_index`` left out.

    Args:
        pred (np.ndarray): ``(H, W)`` prediction, 1 = foreground.
        gt (np.ndarray): ``(H, W)`` ground truth, 1 = foreground.
        ignore_index (int): Ignored label. Defaults to 255.

    Returns:
        float: ``100 * I_fg / max(U_fg, 1)``.
    """
    areas = intersect_and_union_fb(pred, gt, ignore_index)
    return float(100.0 * areas[0] / max(int(areas[1]), 1))


def build_drawing_visualizer(vis_cfg: Optional[dict],
                             name: str) -> Visualizer:
    """A visualizer from a config's ``visualizer`` entry, for drawing only
    (no backends, nothing saved by it).

    Args:
        vis_cfg (dict, optional): The entry; None: a default
            :class:`FewShotLocalVisualizer`.
        name (str): Instance name (made unique with a timestamp).

    Raises:
        ValueError: The configured visualizer cannot draw predictions.
    """
    vis_cfg = dict(vis_cfg or {})
    vis_cfg.setdefault('type', 'FewShotLocalVisualizer')
    for key in ('vis_backends', 'save_dir'):
        vis_cfg.pop(key, None)
    vis_cfg['name'] = f'{name}_{time.time()}'
    visualizer = VISUALIZERS.build(vis_cfg)
    if not callable(getattr(visualizer, 'draw_prediction', None)):
        raise ValueError(
            'Drawing predictions needs a visualizer with draw_prediction() '
            f"(FewShotLocalVisualizer), got {vis_cfg['type']}.")
    return visualizer
