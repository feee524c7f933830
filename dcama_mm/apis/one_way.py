# Copyright (c) dcama_mm contributors. All rights reserved.
"""One class at a time (1-way) for :class:`FewShotInferencer`.

The support set is read once through the test pipeline, encoded once
(``FewShotSegmentor.encode_supports``) and kept between calls; each query
batch is segmented by the segmentor's ``predict`` against it (the argmax
of the 2-class logits resized to the query's original size, or the network
size).
"""
from functools import partial
from typing import List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from .inference_inputs import ImageType
from .query_loop import PredictionPath
from .support_set import LabelsType, SupportSet, load_support_set


class OneWayInferenceMixin:
    """The 1-way support set and predictions of :class:`FewShotInferencer`
    (which provides ``_load``, ``_rest``, ``model`` and ``visualizer``)."""

    _supports: Optional[SupportSet]

    @property
    def num_shots(self) -> int:
        """int: Number of support images currently set (0 when none)."""
        return 0 if self._supports is None else len(self._supports.names)

    def set_supports(self,
                     support_imgs: Union[ImageType, Sequence[ImageType]],
                     support_masks: Union[ImageType, Sequence[ImageType]],
                     support_labels: LabelsType = None) -> None:
        """Load, check and encode a support set for the following calls.

        Args:
            support_imgs (str | np.ndarray | Sequence): K >= 1 support images
                (paths or arrays).
            support_masks (str | np.ndarray | Sequence): Their masks, in the
                same order, each of the size of its image.
            support_labels (int | Sequence, optional): The object's label in
                label masks (e.g. 15 in a PASCAL VOC palette PNG): one for
                every mask, or one (or None) per mask. Defaults to None: the
                masks are binary (0/1, 0/255 or soft 0..255).

        Raises:
            ValueError: No support, a support without a mask (or a mask
                without a support), an unreadable file, a mask whose size
                differs from its image, a label mask without a label (the
                message gives its values), or a mask without foreground.
            FileNotFoundError: A support image or mask does not exist.
        """
        self._supports = load_support_set(
            support_imgs, support_masks, self._load, self._rest, self.model,
            support_labels)
        self._classes, self._support_sets = [], []

    def _one_way_path(self, reuse_supports: bool, resize_to_original: bool,
                      return_probs: bool,
                      return_datasamples: bool) -> PredictionPath:
        """The :class:`PredictionPath` of a 1-way call (0/255 masks)."""
        return PredictionPath(
            forward=partial(self.forward, reuse_supports=reuse_supports,
                            resize_to_original=resize_to_original),
            visualize=self.visualize,
            postprocess=partial(self.postprocess, return_probs=return_probs,
                                return_datasamples=return_datasamples))

    @torch.no_grad()
    def forward(self,
                batch: dict,
                reuse_supports: bool = True,
                resize_to_original: bool = True) -> List[SegDataSample]:
        """The data preprocessor and the segmentor's ``predict`` (at each
        query's original size, or the network size), against the support
        set."""
        supports = self._supports
        samples = batch['data_samples']
        if not reuse_supports:
            for sample in samples:
                sample.support_imgs = supports.packed.support_imgs
                sample.support_masks = supports.packed.support_masks
        data = self.model.data_preprocessor(
            dict(inputs=batch['inputs'], data_samples=samples), False)
        results = self.model.predict(
            data['inputs'],
            data['data_samples'],
            supports=supports.encoded if reuse_supports else None,
            resize_to_original=resize_to_original)
        for sample in results:
            sample.set_metainfo(
                dict(support_img_paths=list(supports.paths),
                     shots=self.num_shots))
            for key in ('support_imgs', 'support_masks'):
                if key in sample:
                    delattr(sample, key)
        return results

    def visualize(self, img: np.ndarray, sample: SegDataSample) -> np.ndarray:
        """The query (BGR) with its predicted mask, the supports beside it
        (:meth:`FewShotLocalVisualizer.draw_prediction`), as BGR."""
        mask = sample.pred_sem_seg.data[0].cpu().numpy()
        picture = self.visualizer.draw_prediction(
            mmcv.bgr2rgb(img), mask,
            [mmcv.bgr2rgb(s) for s in self._supports.imgs],
            self._supports.masks)
        return mmcv.rgb2bgr(picture)

    def postprocess(self, sample: SegDataSample, return_probs: bool,
                    return_datasamples: bool):
        """One query's result as the caller asked for it."""
        logits = sample.seg_logits.data
        prob = logits.softmax(dim=0)[1]
        if return_datasamples:
            sample.set_data(dict(fg_prob=PixelData(data=prob[None])))
            return sample.cpu()
        mask = sample.pred_sem_seg.data[0].to(torch.uint8).cpu().numpy()
        if return_probs:
            return dict(sem_seg=mask, fg_prob=prob.cpu().numpy())
        return mask
