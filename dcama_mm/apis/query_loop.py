# Copyright (c) dcama_mm contributors. All rights reserved.
"""The per-query loop of :class:`FewShotInferencer`'s calls.

One loop for 1-way and N-way calls: they differ only in the
:class:`PredictionPath` they give it (how a batch is predicted, drawn and
returned, and the palette of the written masks).
"""
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from mmseg.structures import SegDataSample

from .inference_inputs import InferenceResults


class PredictionPath(NamedTuple):
    """How the queries of one call become results.

    Attributes:
        forward (callable): A batch (see
            :func:`~dcama_mm.apis.support_set.query_batches`) -> its data
            samples, each with ``pred_sem_seg``.
        visualize (callable): ``(BGR query, data sample)`` -> the BGR
            overlay.
        postprocess (callable): A data sample -> the prediction returned.
        palette (list[tuple], optional): The RGB colours of the classes
            1..N of an N-way label PNG; None: a 0/255 mask.
    """

    forward: Callable[[dict], List[SegDataSample]]
    visualize: Callable[[np.ndarray, SegDataSample], np.ndarray]
    postprocess: Callable[[SegDataSample], Any]
    palette: Optional[List[Tuple[int, int, int]]] = None


def run_queries(batches: Iterable[dict], path: PredictionPath,
                results: InferenceResults, return_vis: bool,
                keep_predictions: bool) -> None:
    """Predict every batch along ``path``; write and record each query's
    results (its mask, its overlay) in ``results``.

    Args:
        batches (Iterable[dict]): The query batches.
        path (PredictionPath): The call's path.
        results (InferenceResults): The call's results.
        return_vis (bool): Keep the overlays (they are drawn also when
            only written).
        keep_predictions (bool): Keep the predictions; False computes none.
    """
    for batch in batches:
        for idx, img, sample in zip(batch['indices'], batch['imgs'],
                                    path.forward(batch)):
            pred_file, vis_file = results.files[idx]
            vis = None
            if vis_file or return_vis:
                vis = path.visualize(img, sample)
            if pred_file:
                labels = sample.pred_sem_seg.data[0].to(torch.uint8)
                results.write_mask(idx, labels.cpu().numpy(), path.palette)
            prediction = None
            if keep_predictions:  # else: nothing kept, nor computed
                prediction = path.postprocess(sample)
            results.add(idx, prediction, vis, return_vis)
