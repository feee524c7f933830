# Copyright (c) dcama_mm contributors. All rights reserved.
"""Several classes at once (N-way) for :class:`FewShotInferencer`.

Each class is shown by its own support set (images and binary masks). Every
query's backbone features are computed once and shared by the classes
(``FewShotSegmentor.predict_logits_n_way``); each support set is encoded
once. Per class the head gives 2-class logits, resized to the query's
original size; their softmax gives the class's foreground probability.

The label rule (:func:`label_map`): a pixel takes the class with the highest
foreground probability when that probability exceeds ``fg_threshold``
(default 0.5), else it is background (0); classes are numbered 1..N in the
order given. With one class and the default threshold this is the 1-way
argmax.
"""
import numbers
from functools import partial
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from .inference_inputs import ImageType, write_label_png
from .query_loop import PredictionPath
from .support_set import LabelsType, SupportSet, load_support_set

__all__ = [
    'label_map', 'check_fg_threshold', 'write_label_png', 'NWayInferenceMixin'
]

#: (support images, masks) or (support images, masks, labels).
SupportSpec = Union[Tuple[Sequence[ImageType], Sequence[ImageType]],
                    Tuple[Sequence[ImageType], Sequence[ImageType],
                          LabelsType]]


def label_map(fg_probs: Tensor, fg_threshold: float = 0.5) -> Tensor:
    """The label rule: ``[N, H, W]`` foreground probabilities -> labels.

    Args:
        fg_probs (Tensor): Per class, the foreground probability.
        fg_threshold (float): A pixel is labelled only where its best
            class's probability exceeds it. Defaults to 0.5.

    Returns:
        Tensor: ``[H, W]`` long, 0 background, ``n + 1`` for class ``n``.
    """
    best, index = fg_probs.max(dim=0)
    return torch.where(best > fg_threshold, index + 1,
                       torch.zeros_like(index))


def check_fg_threshold(fg_threshold: float, n_way: bool) -> None:
    """Refuse an ``fg_threshold`` that is no probability, or one given to
    a 1-way call (whose mask is the argmax of its two logits).

    Args:
        fg_threshold (float): The call's threshold.
        n_way (bool): Whether the call segments N-way support sets.

    Raises:
        ValueError: Outside ``[0, 1)`` (no pixel would exceed 1, every
            pixel exceeds a negative one), or not 0.5 in a 1-way call.
    """
    # numbers.Real: Python's and NumPy's numbers (np.float32 is no float)
    if isinstance(fg_threshold, bool) or not isinstance(
            fg_threshold, numbers.Real) or not 0 <= fg_threshold < 1:
        raise ValueError(
            f'fg_threshold must be a probability in [0, 1), got '
            f'{fg_threshold!r}: a pixel takes its best class where that '
            "class's foreground probability exceeds it (N-way).")
    if not n_way and fg_threshold != 0.5:
        raise ValueError(
            f'fg_threshold applies to N-way support sets (support_sets / '
            f'set_support_sets), got {fg_threshold!r} with one class: a '
            '1-way mask is the argmax of its two logits (foreground '
            'probability > 0.5). For another cut, pass return_probs=True '
            "and threshold the prediction's fg_prob.")


class NWayInferenceMixin:
    """N-way support sets and predictions for :class:`FewShotInferencer`
    (which provides ``_load``, ``_rest``, ``model``, ``visualizer``, and
    the 1-way ``set_supports`` and ``_supports``)."""

    _classes: List[str]
    _support_sets: List[SupportSet]

    def set_support_sets(self, support_sets: Mapping[str,
                                                     SupportSpec]) -> None:
        """Load, check and encode one support set per class.

        Args:
            support_sets (Mapping[str, tuple]): Class name -> (support
                images, their masks) or (support images, masks, labels:
                the class's label in its masks, one for all or one per
                mask), each as for :meth:`set_supports`; classes are
                numbered 1..N in this order.

        Raises:
            ValueError: No class, a class without a name, or bad supports
                (the message names the class).
        """
        if not support_sets:
            raise ValueError('support_sets is empty: give at least one '
                             'class name -> (support images, masks).')
        classes, sets = [], []
        for name, spec in support_sets.items():
            if not isinstance(name, str) or not name:
                raise ValueError('Every class of support_sets needs a '
                                 f'non-empty name, got {name!r}.')
            if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
                raise ValueError(
                    f'support_sets[{name!r}] must be (support images, '
                    'support masks) or (support images, support masks, '
                    f'labels), got {type(spec).__name__}.')
            try:
                sets.append(
                    load_support_set(spec[0], spec[1], self._load,
                                     self._rest, self.model,
                                     spec[2] if len(spec) == 3 else None))
            except (ValueError, FileNotFoundError) as err:
                raise type(err)(f'Class {name!r}: {err}') from err
            classes.append(name)
        self._classes, self._support_sets = classes, sets
        self._supports = None  # the 1-way set is replaced

    def _check_support_args(
            self, support_imgs, support_masks, support_labels,
            support_sets: Optional[Mapping[str, SupportSpec]]) -> None:
        """Refuse the support arguments of a call that do not go together,
        or a call without any support set, before any work."""
        if support_labels is not None and support_masks is None:
            raise ValueError('support_labels goes with support_masks (with '
                             'support_sets: (images, masks, labels)).')
        one_class = support_imgs is not None or support_masks is not None
        if support_sets is not None and one_class:
            raise ValueError('Give support_sets (N-way) or support_imgs '
                             'and support_masks (one class), not both.')
        if one_class and (support_imgs is None or support_masks is None):
            raise ValueError(
                'Give both support_imgs and support_masks (or neither '
                'to reuse the support set given before).')
        if (support_sets is None and not one_class
                and self._supports is None and not self.classes):
            raise ValueError(
                'No support set: pass support_imgs and support_masks (or '
                'support_sets), or call set_supports() first.')

    def _use_supports(self, support_imgs, support_masks, support_labels,
                      support_sets: Optional[Mapping[str, SupportSpec]]
                      ) -> bool:
        """The support arguments of a call (checked by
        :meth:`_check_support_args`): set what they give (one class or
        N-way), else keep the stored set; True when it is N-way."""
        if support_sets is not None:
            self.set_support_sets(support_sets)
        elif support_imgs is not None:
            self.set_supports(support_imgs, support_masks, support_labels)
        return bool(self.classes)

    def _n_way_path(self, resize_to_original: bool, fg_threshold: float,
                    return_datasamples: bool) -> PredictionPath:
        """The :class:`PredictionPath` of an N-way call (indexed label
        PNGs in the classes' colours)."""
        return PredictionPath(
            forward=partial(self._forward_n_way,
                            resize_to_original=resize_to_original,
                            fg_threshold=fg_threshold),
            visualize=self._visualize_n_way,
            postprocess=partial(self._postprocess_n_way,
                                return_datasamples=return_datasamples),
            palette=self.visualizer.class_colors(len(self.classes)))

    @property
    def classes(self) -> List[str]:
        """list[str]: The classes of the N-way support sets (empty in
        1-way use)."""
        return list(getattr(self, '_classes', []))

    @torch.no_grad()
    def _forward_n_way(self, batch: dict, resize_to_original: bool,
                       fg_threshold: float) -> List[SegDataSample]:
        """Label maps and per-class probabilities of a batch of queries."""
        data = self.model.data_preprocessor(
            dict(inputs=batch['inputs'], data_samples=batch['data_samples']),
            False)
        logits = self.model.predict_logits_n_way(
            data['inputs'], [s.encoded for s in self._support_sets])
        results = []
        for sample, per_class in zip(data['data_samples'], logits):
            num, _, height, width = per_class.shape
            # the segmentor's own resize, all classes at once
            flat = self.model.resize_logits(
                per_class.reshape(num * 2, height, width), sample,
                resize_to_original)
            probs = flat.view(num, 2, *flat.shape[-2:]).softmax(dim=1)[:, 1]
            sample.set_data(
                dict(
                    fg_probs=PixelData(data=probs),
                    pred_sem_seg=PixelData(
                        data=label_map(probs, fg_threshold)[None])))
            sample.set_metainfo(dict(classes=list(self._classes)))
            results.append(sample)
        return results

    def _visualize_n_way(self, img: np.ndarray,
                         sample: SegDataSample) -> np.ndarray:
        """The query (BGR) with each class drawn in its colour, a legend,
        and each class's first support; as BGR."""
        labels = sample.pred_sem_seg.data[0].cpu().numpy()
        supports = [(mmcv.bgr2rgb(s.imgs[0]), s.masks[0])
                    for s in self._support_sets]
        picture = self.visualizer.draw_label_map(
            mmcv.bgr2rgb(img), labels, self._classes, supports)
        return mmcv.rgb2bgr(picture)

    def _postprocess_n_way(self, sample: SegDataSample,
                           return_datasamples: bool):
        """``dict(label_map, fg_probs, classes)`` (or the data sample)."""
        if return_datasamples:
            return sample.cpu()
        probs = sample.fg_probs.data.cpu().numpy()
        fg_probs: Dict[str, np.ndarray] = {
            name: probs[n]
            for n, name in enumerate(self._classes)
        }
        return dict(
            label_map=sample.pred_sem_seg.data[0].to(
                torch.uint8).cpu().numpy(),
            fg_probs=fg_probs,
            classes=list(self._classes))
