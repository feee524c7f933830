# Copyright (c) dcama_mm contributors. All rights reserved.
"""Draw few-shot episodes and predictions: supports, ground truth, masks."""
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.visualization import Visualizer

from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample

from .vis_utils import episode_iou, to_mask
from ..utils.checks import strict_arguments

Color = Tuple[int, int, int]


@VISUALIZERS.register_module()
@strict_arguments
class FewShotLocalVisualizer(Visualizer):
    """Visualizer of few-shot segmentation episodes.

    :meth:`add_datasample` draws one picture per episode, a row of panels:
    each support image with its mask, the query with its ground truth and
    the query with the prediction; the title band names the class, the
    episode and the episode's foreground IoU. The picture goes to
    ``out_file`` when given, otherwise to the visualizer's backends
    (``LocalVisBackend`` writes it under ``vis_data/vis_image``).

    Args:
        name (str): Name of the instance. Defaults to ``'visualizer'``.
        image (np.ndarray, optional): The origin image to draw. Defaults to
            None.
        vis_backends (list[dict], optional): Visual backend configs.
            Defaults to None.
        save_dir (str, optional): Save file dir for all storage backends.
            Defaults to None.
        support_color (tuple[int]): RGB colour of the support masks.
            Defaults to ``(255, 215, 0)`` (gold).
        gt_color (tuple[int]): RGB colour of the query's ground truth.
            Defaults to ``(30, 100, 255)``.
        pred_color (tuple[int]): RGB colour of the prediction. Defaults to
            ``(255, 40, 40)``.
        alpha (float): Opacity of the masks. Defaults to 0.5.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 support_color: Color = (255, 215, 0),
                 gt_color: Color = (30, 100, 255),
                 pred_color: Color = (255, 40, 40),
                 alpha: float = 0.5,
                 **kwargs) -> None:
        super().__init__(
            name=name,
            image=image,
            vis_backends=vis_backends,
            save_dir=save_dir,
            **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}.')
        self.support_color = tuple(support_color)
        self.gt_color = tuple(gt_color)
        self.pred_color = tuple(pred_color)
        self.alpha = alpha

    # ------------------------------------------------------------------
    # drawing primitives (pure numpy / cv2, no state)
    # ------------------------------------------------------------------
    def _overlay(self, image: np.ndarray, mask: np.ndarray,
                 color: Color) -> np.ndarray:
        """Blend ``color`` into ``image`` where ``mask`` is 1; copy."""
        out = image.astype(np.float32)
        if mask.shape != image.shape[:2]:
            mask = mmcv.imresize(
                mask.astype(np.uint8), (image.shape[1], image.shape[0]),
                interpolation='nearest')
        fg = mask == 1
        out[fg] = (1 - self.alpha) * out[fg] + self.alpha * np.asarray(
            color, dtype=np.float32)
        # outline, so that small objects stay visible
        contours, _ = cv2.findContours(
            fg.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        out = np.ascontiguousarray(out.clip(0, 255).astype(np.uint8))
        cv2.drawContours(out, contours, -1, color, 1)
        return out

    @staticmethod
    def _label(panel: np.ndarray, text: str, height: int) -> np.ndarray:
        """Put ``text`` in a white band above ``panel`` (shrunk to fit)."""
        band = np.full((height, panel.shape[1], 3), 255, dtype=np.uint8)
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = height / 40.0
        thickness = max(1, int(round(scale * 1.5)))
        (text_w, _), _ = cv2.getTextSize(text, font, scale, thickness)
        if text_w > panel.shape[1] - 8:
            scale *= max(panel.shape[1] - 8, 1) / text_w
            thickness = max(1, int(round(scale * 1.5)))
        cv2.putText(band, text, (4, int(height * 0.7)), font, scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
        return np.concatenate([band, panel], axis=0)

    def draw_episode(self,
                     query: np.ndarray,
                     supports: Sequence[np.ndarray],
                     support_masks: Sequence[np.ndarray],
                     gt: Optional[np.ndarray] = None,
                     pred: Optional[np.ndarray] = None,
                     title: str = '') -> np.ndarray:
        """Compose the picture of one episode.

        Args:
            query (np.ndarray): RGB ``uint8`` query image ``(H, W, 3)``.
            supports (Sequence[np.ndarray]): RGB ``uint8`` support images.
            support_masks (Sequence[np.ndarray]): Their ``(h, w)`` 0/1 masks.
            gt (np.ndarray, optional): Query ground truth ``(H, W)`` (0/1,
                255 ignored). Defaults to None (panel left out).
            pred (np.ndarray, optional): Prediction ``(H, W)`` (0/1).
                Defaults to None (panel left out).
            title (str): Text of the title band. Defaults to ''.

        Returns:
            np.ndarray: The RGB ``uint8`` picture.
        """
        if len(supports) != len(support_masks):
            raise ValueError(
                f'Got {len(supports)} support images but '
                f'{len(support_masks)} support masks.')
        height = query.shape[0]
        label_h = max(16, height // 12)

        def fit(img: np.ndarray) -> np.ndarray:
            if img.shape[0] == height:
                return img
            width = max(1, round(img.shape[1] * height / img.shape[0]))
            return mmcv.imresize(img, (width, height))

        panels = []
        for k, (img, mask) in enumerate(zip(supports, support_masks)):
            panel = fit(self._overlay(img, mask, self.support_color))
            panels.append(self._label(panel, f'support {k + 1}', label_h))
        if gt is not None:
            shown = np.where(gt == 255, 0, gt)
            panels.append(
                self._label(
                    self._overlay(query, shown, self.gt_color),
                    'ground truth', label_h))
        if pred is not None:
            panels.append(
                self._label(
                    self._overlay(query, pred, self.pred_color),
                    'prediction', label_h))
        gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
        row = panels[0]
        for panel in panels[1:]:
            row = np.concatenate([row, gap, panel], axis=1)
        if title:
            row = self._label(row, title, int(label_h * 1.3))
        return row

    def draw_prediction(self, query: np.ndarray, pred: np.ndarray,
                        supports: Sequence[np.ndarray],
                        support_masks: Sequence[np.ndarray]) -> np.ndarray:
        """A query with its predicted mask, the supports small beside it.

        Args:
            query (np.ndarray): RGB ``uint8`` query ``(H, W, 3)``.
            pred (np.ndarray): Its ``(H, W)`` 0/1 mask.
            supports (Sequence[np.ndarray]): RGB ``uint8`` support images.
            support_masks (Sequence[np.ndarray]): Their 0/1 masks.

        Returns:
            np.ndarray: The RGB picture: the query at full size on the
            left, the supports (masks drawn) in a column grid on the right.
        """
        canvas = self._overlay(query, pred, self.pred_color)
        height = canvas.shape[0]
        rows = min(len(supports), 3)
        cols = math.ceil(len(supports) / rows)
        cell = max(height // 3, 1)
        gap = max(cell // 16, 2)
        panel = np.full((height, gap + cols * (cell + gap), 3), 255,
                        np.uint8)
        for k, (img, mask) in enumerate(zip(supports, support_masks)):
            thumb = self._thumbnail(img, mask, cell, self.support_color)
            th, tw = thumb.shape[:2]
            row, col = k % rows, k // rows
            y0 = row * cell + (cell - th) // 2
            x0 = gap + col * (cell + gap) + (cell - tw) // 2
            panel[y0:y0 + th, x0:x0 + tw] = thumb
        return np.concatenate([canvas, panel], axis=1)

    def _thumbnail(self, img: np.ndarray, mask: np.ndarray, cell: int,
                   color: Color) -> np.ndarray:
        """``img`` shrunk to fit a ``cell`` square, ``mask`` drawn after
        shrinking (so that its outline stays visible)."""
        scale = cell / max(img.shape[:2])
        th = max(int(round(img.shape[0] * scale)), 1)
        tw = max(int(round(img.shape[1] * scale)), 1)
        return self._overlay(
            mmcv.imresize(img, (tw, th), interpolation='area'),
            mmcv.imresize(
                np.asarray(mask, np.uint8), (tw, th),
                interpolation='nearest'), color)

    def draw_label_map(self, query: np.ndarray, labels: np.ndarray,
                       classes: Sequence[str],
                       supports: Sequence[Tuple[np.ndarray, np.ndarray]]
                       ) -> np.ndarray:
        """A query with an N-way label map, a legend and one support per
        class.

        Args:
            query (np.ndarray): RGB ``uint8`` query ``(H, W, 3)``.
            labels (np.ndarray): ``(H, W)`` labels, 0 background, ``n + 1``
                for ``classes[n]``.
            classes (Sequence[str]): The class names.
            supports (Sequence[tuple]): Per class, an RGB support image and
                its 0/1 mask (drawn in the class's colour).

        Returns:
            np.ndarray: The RGB picture: the query with each class drawn
            in its :meth:`class_colors` colour, the supports in a column
            on the right, a legend band on top.
        """
        colors = self.class_colors(len(classes))
        canvas = query
        for n, color in enumerate(colors):
            canvas = self._overlay(canvas, (labels == n + 1), color)
        height = canvas.shape[0]
        cell = max(height // max(len(classes), 1), 1)
        panel = np.full((height, cell, 3), 255, np.uint8)
        for n, ((img, mask), color) in enumerate(zip(supports, colors)):
            thumb = self._thumbnail(img, mask, cell, color)
            th, tw = thumb.shape[:2]
            y0 = n * cell + (cell - th) // 2
            panel[y0:y0 + th, (cell - tw) // 2:(cell - tw) // 2 + tw] = thumb
        picture = np.concatenate([canvas, panel], axis=1)
        band_h = max(16, height // 12)
        band = np.full((band_h, picture.shape[1], 3), 255, np.uint8)
        x = 4
        for name, color in zip(classes, colors):
            cv2.rectangle(band, (x, band_h // 4), (x + band_h // 2,
                                                   3 * band_h // 4), color,
                          -1)
            x += band_h // 2 + 4
            scale = band_h / 40.0
            cv2.putText(band, name, (x, int(band_h * 0.7)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                        max(1, int(round(scale * 1.5))), cv2.LINE_AA)
            (text_w, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX,
                                             scale,
                                             max(1, int(round(scale * 1.5))))
            x += text_w + 12
        return np.concatenate([band, picture], axis=0)

    def class_colors(self, num: int) -> List[Color]:
        """RGB colours of N-way classes 1..num: the prediction colour first,
        then well-separated hues."""
        colors = [self.pred_color]
        for n in range(1, num):
            hue = int((n * 0.618033988749895 + 0.1) % 1.0 * 180)
            hsv = np.uint8([[[hue, 220, 240]]])
            colors.append(tuple(int(c) for c in cv2.cvtColor(
                hsv, cv2.COLOR_HSV2RGB)[0, 0]))
        return colors[:num]

    # ------------------------------------------------------------------
    # mmengine's Visualizer interface
    # ------------------------------------------------------------------
    # mmengine's ``dataset_meta`` is master-only: on the other ranks of a
    # distributed test the setter did nothing and the getter gave None, so
    # their pictures were named and titled by class index. Every rank draws
    # its own episodes, so every rank keeps the metainfo.
    @property
    def dataset_meta(self) -> Optional[dict]:
        """The dataset's metainfo (``classes``), on every rank."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        self._dataset_meta = dataset_meta

    def class_name(self, class_id: Optional[int]) -> str:
        """Class name from ``dataset_meta['classes']`` (or the id)."""
        if class_id is None:
            return '?'
        classes = (self.dataset_meta or {}).get('classes')
        if classes is not None and 0 <= int(class_id) < len(classes):
            return str(classes[int(class_id)])
        return str(class_id)

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       supports: Optional[Sequence[np.ndarray]] = None,
                       support_masks: Optional[Sequence[np.ndarray]] = None,
                       gt: Optional[np.ndarray] = None) -> np.ndarray:
        """Draw an episode and show / save it.

        Args:
            name (str): Image identifier (backend key).
            image (np.ndarray): RGB ``uint8`` query image ``(H, W, 3)`` at the
                size of the prediction.
            data_sample (SegDataSample, optional): The episode's output, with
                ``pred_sem_seg``, ``gt_sem_seg`` / ``ori_gt_sem_seg``,
                ``support_masks`` and the metainfo ``class_id`` and
                ``episode_index``. Defaults to None.
            draw_gt (bool): Draw the ground truth. Defaults to True.
            draw_pred (bool): Draw the prediction. Defaults to True.
            show (bool): Show the picture in a window. Defaults to False.
            wait_time (float): Seconds to show it. Defaults to 0.
            out_file (str, optional): Write the picture there instead of to
                the backends. Defaults to None.
            step (int): Global step for the backends. Defaults to 0.
            supports (Sequence[np.ndarray], optional): RGB support images;
                by default the ``uint8`` BGR ``support_imgs`` of
                ``data_sample``.
            support_masks (Sequence[np.ndarray], optional): Their masks; by
                default ``data_sample.support_masks``.
            gt (np.ndarray, optional): The ground truth at the size of
                ``image``; by default ``gt_sem_seg`` or ``ori_gt_sem_seg``
                of ``data_sample``, whichever has that size.

        Returns:
            np.ndarray: The RGB picture.
        """
        sample = data_sample if data_sample is not None else SegDataSample()
        size = image.shape[:2]
        if support_masks is None:
            masks = sample.get('support_masks')
            support_masks = [] if masks is None else [
                to_mask(m, 'support_masks') for m in masks
            ]
        if supports is None:
            imgs = sample.get('support_imgs')
            if imgs is None or not isinstance(
                    imgs, torch.Tensor) or imgs.dtype != torch.uint8:
                raise ValueError(
                    'add_datasample needs the support images: pass '
                    '`supports` (RGB arrays) or a data sample whose '
                    '`support_imgs` is a uint8 [K, 3, H, W] BGR tensor.')
            supports = [
                np.ascontiguousarray(
                    img.permute(1, 2, 0).cpu().numpy()[..., ::-1])
                for img in imgs
            ]
        pred = None
        if draw_pred and 'pred_sem_seg' in sample:
            pred = to_mask(sample.pred_sem_seg, 'pred_sem_seg')
        if draw_gt and gt is None:
            for key in ('gt_sem_seg', 'ori_gt_sem_seg'):
                if key in sample:
                    candidate = to_mask(sample.get(key), key)
                    if candidate.shape == tuple(size):
                        gt = candidate
                        break
        parts = [f'class {self.class_name(sample.get("class_id"))}']
        if sample.get('episode_index') is not None:
            parts.insert(0, f'episode {int(sample.episode_index)}')
        parts.append(f'{len(supports)}-shot')
        if pred is not None and gt is not None and pred.shape == gt.shape:
            parts.append(f'IoU {episode_iou(pred, gt):.1f}%')
        picture = self.draw_episode(
            image,
            supports,
            support_masks,
            gt=gt if draw_gt else None,
            pred=pred,
            title=' | '.join(parts))
        if show:
            self.show(picture, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(picture), out_file)
        else:
            self.add_image(name, picture, step)
        return picture
