# Copyright (c) dcama_mm contributors. All rights reserved.
"""Few-shot segmentation of a user's own images with a DCAMA model.

:class:`FewShotInferencer`: its mmengine building blocks are in
:mod:`~dcama_mm.apis.inferencer_blocks`, its 1-way and N-way supports and
predictions in :mod:`~dcama_mm.apis.one_way` and :mod:`~dcama_mm.apis.n_way`,
the per-query loop both share in :mod:`~dcama_mm.apis.query_loop`.
"""
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.infer import BaseInferencer
from mmengine.registry import init_default_scope

from ..models.utils.precision import check_amp, set_amp
from .inference_inputs import (ImageType, InferenceResults, InputsType,
                               config_of, is_single, resize_option)
from .inferencer_blocks import EpisodeInferencerBlocks
from .n_way import NWayInferenceMixin, SupportSpec, check_fg_threshold
from .one_way import OneWayInferenceMixin
from .query_loop import run_queries
from .support_set import LabelsType, SupportSet, split_test_pipeline
# re-exported: importable from here before the module was split
from ..visualization import build_drawing_visualizer  # noqa: F401
from .inference import init_model  # noqa: F401
from .inference_inputs import Query, collect_queries  # noqa: F401
from .support_set import load_support_set, query_batches  # noqa: F401

__all__ = ['FewShotInferencer']


class FewShotInferencer(OneWayInferenceMixin, NWayInferenceMixin,
                        EpisodeInferencerBlocks, BaseInferencer):
    """Segment any number of query images given K annotated support images.

    The few-shot counterpart of mmseg's ``MMSegInferencer``, on mmengine's
    :class:`~mmengine.infer.BaseInferencer`: built from a config and a
    checkpoint (a ``dcama_mm`` checkpoint, or a reference DCAMA checkpoint
    converted with ``tools/model_converters/dcama2mmseg.py``) and called on
    query images. Instead of class names, the target is shown by K >= 1
    support images with binary masks.

    It runs the evaluated episode path: files or arrays go through the
    config's test pipeline (``test_dataloader.dataset.pipeline``; its
    :class:`~dcama_mm.datasets.transforms.LoadEpisode` takes arrays as well
    as paths), the model's data preprocessor and the segmentor's
    ``predict``, which resizes each query's logits to the query's original
    size before the argmax; pictures come from the config's
    :class:`~dcama_mm.visualization.FewShotLocalVisualizer`. Image files of
    every mode (16-bit, palette, ...) are read by the rule of
    :mod:`dcama_mm.datasets.transforms.image_modes`, masks by the
    binary-mask rule of :mod:`dcama_mm.datasets.transforms.binary_mask`
    (0/1, 0/255 and soft 0..255 masks; a label mask needs
    ``support_labels``); a support mask without foreground is refused.
    ``docs/inputs.md`` has both rules and the result file names.

    The support set goes through the pipeline once (as an episode whose
    query is its first support), is encoded once
    (``FewShotSegmentor.encode_supports``) and reused for every query and
    every later call until other supports are given; queries are run in
    batches of ``batch_size``.

    Images given as arrays are ``uint8`` ``HxWx3`` in BGR order (as read by
    ``mmcv.imread`` or ``cv2.imread``) or ``HxW`` grey.

    Several classes at once: give ``support_sets`` (class name -> support
    images and masks) instead of ``support_imgs``/``support_masks``; each
    query then gets a label map (0 background, ``n`` the n-th class) and
    per-class foreground probabilities, by the rule of
    :mod:`dcama_mm.apis.n_way`.

    Example:
        >>> inferencer = FewShotInferencer(
        ...     'configs/dcama_swinb_coco_fold0.py', 'dcama.pth')
        >>> result = inferencer(
        ...     'queries/', support_imgs=['cat1.jpg', 'cat2.jpg'],
        ...     support_masks=['cat1.png', 'cat2.png'], batch_size=4,
        ...     out_dir='outputs')
        >>> masks = result['predictions']  # one 0/1 uint8 array per query

    Args:
        model (str | Path | Config | nn.Module): A config file, a loaded
            config, or an already built ``FewShotSegmentor`` (used as is,
            moved to ``device`` and put in eval mode; its ``cfg`` gives the
            pipeline, else the default one: load, resize to 384x384, pack).
        weights (str, optional): Checkpoint to load. Ignored when ``model``
            is a module. Defaults to None (random weights, with a warning).
        device (str, optional): Device to run on. Defaults to None: ``cuda``
            when available, else ``cpu``.
        img_size (int | tuple[int, int], optional): Network input size
            (h, w), set on the pipeline's ``ResizeEpisode``; each side at
            least 32, the backbone's largest stride (a smaller one is
            refused). Defaults to None: the pipeline's own size.
        cfg_options (dict, optional): Overrides for the config, as
            ``--cfg-options`` of the tools; ``model.test_cfg.
            resize_to_original`` here sets the calls' default. Defaults to
            None.
        amp (bool | str, optional): Mixed precision: True/``'auto'``
            (bfloat16 on the CPU, float16 on CUDA), ``'bfloat16'``,
            ``'float16'``, or False (fp32); sets the model's
            ``test_cfg.amp`` (docs/precision.md). Defaults to None: the
            model's own setting (fp32 unless its config says otherwise).
    """

    def __init__(self,
                 model: Union[str, Path, Config, nn.Module],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 cfg_options: Optional[dict] = None,
                 amp: Optional[Union[bool, str]] = None) -> None:
        check_amp(amp, 'FewShotInferencer: amp')
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self._module = model if isinstance(model, nn.Module) else None
        cfg = config_of(model, cfg_options)
        scope = cfg.get('default_scope', 'mmseg')
        init_default_scope(scope)
        # the pipeline (and its network size) is checked before the model
        # is built and its checkpoint read
        self._load, self._rest, self._resizes = split_test_pipeline(
            cfg, img_size)
        super().__init__(cfg, weights, device, scope=scope,
                         show_progress=False)
        if not callable(getattr(self.model, 'encode_supports', None)):
            raise ValueError(
                'FewShotInferencer needs a few-shot segmentor with '
                f'encode_supports() (FewShotSegmentor), got '
                f'{type(self.model).__name__}.')
        if amp is not None:
            set_amp(self.model, amp)
        self._supports: Optional[SupportSet] = None
        # the config files' test_cfg.resize_to_original is the evaluation
        # protocol's (network size); inference gives each query's size
        # unless the caller's cfg_options say otherwise
        self._resize_to_original = resize_option(cfg_options)

    # ------------------------------------------------------------------
    # Inference
    # ------------------------------------------------------------------
    def __call__(self,
                 inputs: InputsType,
                 support_imgs: Optional[Union[ImageType,
                                              Sequence[ImageType]]] = None,
                 support_masks: Optional[Union[ImageType,
                                               Sequence[ImageType]]] = None,
                 support_labels: LabelsType = None,
                 batch_size: int = 1,
                 return_probs: bool = False,
                 return_datasamples: bool = False,
                 return_vis: bool = False,
                 out_dir: str = '',
                 img_out_dir: str = 'vis',
                 pred_out_dir: str = 'pred',
                 force: bool = False,
                 reuse_supports: bool = True,
                 resize_to_original: Optional[bool] = None,
                 support_sets: Optional[Mapping[str, SupportSpec]] = None,
                 fg_threshold: float = 0.5,
                 show_progress: bool = False,
                 return_predictions: bool = True) -> dict:
        """Segment the query images.

        Args:
            inputs (str | np.ndarray | Sequence): Query images: a path, a
                folder (its images, non-recursive, sorted by name), an array,
                or a list of these.
            support_imgs (str | np.ndarray | Sequence, optional): Support
                images. When given, they replace the stored support set (see
                :meth:`set_supports`). Defaults to None: use the stored set.
            support_masks (str | np.ndarray | Sequence, optional): Their
                masks. Defaults to None.
            support_labels (int | Sequence, optional): The object's label in
                label masks (see :meth:`set_supports`). Defaults to None.
            batch_size (int): Queries per forward pass. Defaults to 1.
            return_probs (bool): Also return each query's foreground
                probability (softmax of the resized logits). Defaults to
                False.
            return_datasamples (bool): Return ``SegDataSample`` objects
                (``pred_sem_seg``, ``seg_logits`` and ``fg_prob`` at the
                original size) instead of arrays. Defaults to False.
            return_vis (bool): Return the overlay pictures. Defaults to
                False.
            out_dir (str): Folder to write results to; nothing is written
                when empty. Defaults to ''.
            img_out_dir (str): Sub-folder of ``out_dir`` for the overlay
                pictures (``<query file name>.jpg``: the query with its mask
                drawn, the supports small beside it). Empty to write none.
                Defaults to 'vis'.
            pred_out_dir (str): Sub-folder of ``out_dir`` for the masks
                (``<query file name>.png``, e.g. ``a.jpg.png``: 0 background
                / 255 foreground, usable as a support mask). Empty to write
                none. Defaults to 'pred'.
            force (bool): Overwrite existing result files. Without it, the
                call refuses (before reading its supports or running the
                model) when one of its result files exists. Defaults to
                False.
            reuse_supports (bool): Use the support features encoded once.
                False runs every batch as plain episodes (the supports in
                each data sample, as ``tools/test.py`` does), for
                comparison. Defaults to True.
            resize_to_original (bool, optional): Predict at each query's
                original size; False: at the network size (as
                ``tools/test.py`` evaluates by default). Defaults to None:
                True, unless the inferencer's ``cfg_options`` set
                ``model.test_cfg.resize_to_original`` (the value in the
                config file is the evaluation's and is not used here).
            support_sets (Mapping[str, tuple], optional): N-way: class
                name -> (support images, masks); replaces the stored
                support set(s) (see :meth:`set_support_sets`). Defaults to
                None.
            fg_threshold (float): N-way: a pixel takes its best class when
                that class's foreground probability exceeds this, else it
                is background; in [0, 1). A 1-way call refuses another
                value than 0.5 (its mask is the argmax; threshold
                ``fg_prob`` of ``return_probs`` instead). Defaults to 0.5.
            show_progress (bool): Show a progress bar. Defaults to False.
            return_predictions (bool): Return the predictions. False keeps
                none (``predictions`` is then an empty list), so that the
                memory stays flat over many queries written to
                ``out_dir``. Defaults to True.

        Returns:
            dict: With keys

            - ``predictions``: per query, the binary mask (``uint8``
              ``HxW``, 0/1, at the query's original size), or with
              ``return_probs`` a dict with ``sem_seg`` (that mask) and
              ``fg_prob`` (``float32`` ``HxW``), or with
              ``return_datasamples`` a ``SegDataSample``; N-way: a dict
              with ``label_map`` (``uint8`` ``HxW``), ``fg_probs`` (class
              name -> ``float32`` ``HxW``) and ``classes``. None for a query
              that could not be read. A single (non-folder) input gives a
              single prediction instead of a list.
            - ``visualization``: the overlays (BGR ``uint8``) when
              ``return_vis``, else an empty list (unwrapped like
              ``predictions``).
            - ``img_paths``: per query, its path (None for arrays).
            - ``failed``: names of the queries that could not be read
              (logged as errors; the other queries are still processed).

        Raises:
            ValueError: No support set, bad supports (see
                :meth:`set_supports`), bad ``batch_size`` or
                ``fg_threshold``, or an empty query folder.
            FileNotFoundError: A query path that does not exist.
            FileExistsError: A result file exists and ``force`` is False.
            NotADirectoryError: ``out_dir`` (or its ``pred_out_dir`` /
                ``img_out_dir``) is an existing file.
        """
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
        check_fg_threshold(fg_threshold, n_way=True)  # the range, at once
        if resize_to_original is None:
            resize_to_original = self._resize_to_original
        self._check_support_args(support_imgs, support_masks, support_labels,
                                 support_sets)
        queries = self._inputs_to_list(inputs)
        # the result files are planned (an overwrite refused) before the
        # supports are read and encoded
        results = InferenceResults(queries, out_dir, img_out_dir,
                                   pred_out_dir, force, show_progress,
                                   return_predictions)
        n_way = self._use_supports(support_imgs, support_masks,
                                   support_labels, support_sets)
        check_fg_threshold(fg_threshold, n_way)
        if n_way:
            path = self._n_way_path(resize_to_original, fg_threshold,
                                    return_datasamples)
        else:
            path = self._one_way_path(reuse_supports, resize_to_original,
                                      return_probs, return_datasamples)
        results.start_progress()
        run_queries(
            self.preprocess(queries, batch_size, results.failed,
                            results.progress), path, results, return_vis,
            return_predictions)
        return results.finish(is_single(inputs), return_vis)
