"""Few-shot segmentation of a user's own images with a DCAMA model."""
import logging
import math
import os
import os.path as osp
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmengine.utils import ProgressBar
from mmseg.structures import SegDataSample

from .inference import init_model

ImageType = Union[str, Path, np.ndarray]
InputsType = Union[ImageType, Sequence[ImageType]]

#: File name endings taken as images when a folder is given as queries.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm', '.pgm')

#: Colours (BGR) of the overlay: the query's predicted mask and the support
#: masks.
QUERY_COLOR = (40, 40, 230)
SUPPORT_COLOR = (0, 215, 255)  # BGR gold: stands out on most textures


class FewShotInferencer:
    """Segment any number of query images given K annotated support images.

    The few-shot counterpart of mmseg's ``MMSegInferencer``: it is built from
    a config and a checkpoint (a ``dcama_mm`` checkpoint, or a reference
    DCAMA checkpoint converted with
    ``tools/model_converters/dcama2mmseg.py``) and called on query images.
    Instead of class names, the target is shown by K >= 1 support images with
    binary masks.

    Preprocessing follows the reference DCAMA code: every image is resized to
    the network size (384x384 by default) with Pillow's bilinear filter,
    masks with nearest neighbour, and images are normalised with the model's
    ``data_preprocessor`` settings. Each query's 2-class logits are resized
    (bilinear, ``align_corners=True``) to the query's original size before
    the argmax, so the masks come back at the size of their images, whatever
    their aspect ratio.

    The support set is encoded once (``FewShotSegmentor.encode_supports``)
    and reused for every query and every later call until other supports are
    given; queries are run in batches of ``batch_size``.

    It keeps ``MMSegInferencer``'s call style (``inputs``, ``batch_size``,
    ``return_datasamples``, ``return_vis``, ``out_dir`` with ``vis`` and
    ``pred`` sub-folders, a dict with ``predictions`` and ``visualization``)
    but is not an mmengine ``BaseInferencer``: an episode is not one image
    through the dataset's test pipeline, and the support set must outlive
    a call.

    Images given as arrays are ``uint8`` ``HxWx3`` in BGR order (as read by
    ``mmcv.imread`` or ``cv2.imread``) or ``HxW`` grey. Masks (files or
    arrays) are binary: ``0/1`` or ``0/255`` (any mask whose largest value is
    above 1 is foreground where it is >= 128); colour masks count a pixel as
    foreground when any channel does.

    Example:
        >>> inferencer = FewShotInferencer(
        ...     'configs/dcama/dcama_swinb_coco20i_fold0.py', 'dcama.pth')
        >>> result = inferencer(
        ...     'queries/', support_imgs=['cat1.jpg', 'cat2.jpg'],
        ...     support_masks=['cat1.png', 'cat2.png'], batch_size=4,
        ...     out_dir='outputs')
        >>> masks = result['predictions']  # one 0/1 uint8 array per query

    Args:
        model (str | Path | Config | nn.Module): A config file, a loaded
            config, or an already built ``FewShotSegmentor`` (used as is,
            moved to ``device`` and put in eval mode).
        weights (str, optional): Checkpoint to load. Ignored when ``model``
            is a module. Defaults to None (random weights, with a warning).
        device (str, optional): Device to run on. Defaults to None: ``cuda``
            when available, else ``cpu``.
        img_size (int | tuple[int, int], optional): Network input size
            (h, w). Defaults to None: the size the config's test pipeline
            resizes to (its ``ResizeEpisode``, whose ``interpolation`` and
            ``backend`` are also followed), 384x384 when the config does
            not say.
        cfg_options (dict, optional): Overrides for the config, as
            ``--cfg-options`` of the tools. Defaults to None.
    """

    def __init__(self,
                 model: Union[str, Path, Config, nn.Module],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None,
                 cfg_options: Optional[dict] = None) -> None:
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if isinstance(model, nn.Module):
            self.model = model.to(device).eval()
        else:
            self.model = init_model(
                model, weights, device=device, cfg_options=cfg_options)
        cfg = getattr(self.model, 'cfg', None)
        self.img_size = _resolve_img_size(img_size, cfg)
        resize = _resize_transform_of(cfg) or dict()
        self._interpolation = resize.get('interpolation', 'bilinear')
        self._resize_backend = resize.get('backend', 'pillow')
        if not callable(getattr(self.model.data_preprocessor, 'normalize',
                                None)):
            raise ValueError(
                'FewShotInferencer needs a model whose data_preprocessor '
                'has a normalize() method (FewShotDataPreProcessor), got '
                f'{type(self.model.data_preprocessor).__name__}.')
        self._supports: Optional[dict] = None

    @property
    def device(self) -> torch.device:
        """torch.device: The device the model runs on."""
        return next(self.model.parameters()).device

    @property
    def num_shots(self) -> int:
        """int: Number of support images currently set (0 when none)."""
        return 0 if self._supports is None else len(self._supports['names'])

    # ------------------------------------------------------------------
    # Supports
    # ------------------------------------------------------------------
    def set_supports(self, support_imgs: Union[ImageType,
                                               Sequence[ImageType]],
                     support_masks: Union[ImageType,
                                          Sequence[ImageType]]) -> None:
        """Load, check and encode a support set for the following calls.

        Args:
            support_imgs (str | np.ndarray | Sequence): K >= 1 support images
                (paths or arrays).
            support_masks (str | np.ndarray | Sequence): Their binary masks,
                in the same order, each of the size of its image.

        Raises:
            ValueError: No support, a support without a mask (or a mask
                without a support), an unreadable file, or a mask whose
                size differs from its image.
            FileNotFoundError: A support image or mask does not exist.
        """
        imgs = _as_list(support_imgs)
        masks = _as_list(support_masks)
        if len(imgs) == 0:
            raise ValueError('No support image given: few-shot inference '
                             'needs K >= 1 support images with masks.')
        names = [_name_of(img, f'support image #{i}')
                 for i, img in enumerate(imgs)]
        mask_names = [_name_of(mask, f'support mask #{i}')
                      for i, mask in enumerate(masks)]
        if len(masks) < len(imgs):
            missing = ', '.join(repr(n) for n in names[len(masks):])
            raise ValueError(
                f'Support image(s) {missing} have no mask: give one binary '
                f'mask per support image (got {len(imgs)} images and '
                f'{len(masks)} masks).')
        if len(masks) > len(imgs):
            extra = ', '.join(repr(n) for n in mask_names[len(imgs):])
            raise ValueError(
                f'Support mask(s) {extra} have no support image: give one '
                f'image per mask (got {len(imgs)} images and {len(masks)} '
                'masks).')

        raw_imgs, raw_masks, net_imgs, net_masks = [], [], [], []
        for img, mask, name, mask_name in zip(imgs, masks, names,
                                              mask_names):
            img = _read_image(img, name, what='support image')
            mask = _read_mask(mask, mask_name)
            if img.shape[:2] != mask.shape:
                raise ValueError(
                    f'Support mask {mask_name!r} is {mask.shape[0]}x'
                    f'{mask.shape[1]} (h x w) but its image {name!r} is '
                    f'{img.shape[0]}x{img.shape[1]}: a mask must have the '
                    'size of its image.')
            if not mask.any():
                print_log(
                    f'Support mask {mask_name!r} (of {name!r}) has no '
                    'foreground pixel: this support shows nothing to look '
                    'for. Foreground must be 1 (0/1 masks) or >= 128 '
                    '(0/255 masks).',
                    logger='current',
                    level=logging.WARNING)
            raw_imgs.append(img)
            raw_masks.append(mask)
            net_imgs.append(self._image_to_tensor(img))
            net_masks.append(self._mask_to_tensor(mask))
        if not any(mask.any() for mask in raw_masks):
            print_log(
                'All support masks are empty: the model has nothing to look '
                'for and its predictions are meaningless.',
                logger='current',
                level=logging.WARNING)

        support_imgs_t = self._normalize(torch.stack(net_imgs))
        support_masks_t = torch.stack(net_masks).to(self.device)
        with torch.no_grad():
            encoded = self.model.encode_supports(support_imgs_t,
                                                 support_masks_t)
        self._supports = dict(
            names=names,
            paths=[str(img) if isinstance(img, (str, Path)) else None
                   for img in imgs],
            imgs=raw_imgs,
            masks=raw_masks,
            net_imgs=support_imgs_t,
            net_masks=support_masks_t,
            encoded=encoded)

    # ------------------------------------------------------------------
    # Inference
    # ------------------------------------------------------------------
    def __call__(self,
                 inputs: InputsType,
                 support_imgs: Optional[Union[ImageType,
                                              Sequence[ImageType]]] = None,
                 support_masks: Optional[Union[ImageType,
                                               Sequence[ImageType]]] = None,
                 batch_size: int = 1,
                 return_probs: bool = False,
                 return_datasamples: bool = False,
                 return_vis: bool = False,
                 out_dir: str = '',
                 img_out_dir: str = 'vis',
                 pred_out_dir: str = 'pred',
                 force: bool = False,
                 reuse_supports: bool = True,
                 show_progress: bool = False) -> dict:
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
                pictures (``<query name>.jpg``: the query with its mask
                tinted, the supports small beside it). Empty to write none.
                Defaults to 'vis'.
            pred_out_dir (str): Sub-folder of ``out_dir`` for the masks
                (``<query name>.png``, 0 background / 255 foreground, usable
                as a support mask). Empty to write none. Defaults to 'pred'.
            force (bool): Overwrite existing result files. Without it, the
                call refuses (before running the model) when one of its
                result files exists. Defaults to False.
            reuse_supports (bool): Use the support features encoded once.
                False recomputes them with every batch (as plain
                ``predict_logits``), for comparison. Defaults to True.
            show_progress (bool): Show a progress bar. Defaults to False.

        Returns:
            dict: With keys

            - ``predictions``: per query, the binary mask (``uint8``
              ``HxW``, 0/1, at the query's original size), or with
              ``return_probs`` a dict with ``sem_seg`` (that mask) and
              ``fg_prob`` (``float32`` ``HxW``), or with
              ``return_datasamples`` a ``SegDataSample``. None for a query
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
                :meth:`set_supports`), bad ``batch_size`` or an empty query
                folder.
            FileNotFoundError: A query path that does not exist.
            FileExistsError: A result file exists and ``force`` is False.
        """
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
        if support_imgs is not None or support_masks is not None:
            if support_imgs is None or support_masks is None:
                raise ValueError(
                    'Give both support_imgs and support_masks (or neither '
                    'to reuse the support set given before).')
            self.set_supports(support_imgs, support_masks)
        if self._supports is None:
            raise ValueError(
                'No support set: pass support_imgs and support_masks, or '
                'call set_supports() first.')

        single = isinstance(inputs, (str, Path, np.ndarray)) and not (
            isinstance(inputs, (str, Path)) and osp.isdir(inputs))
        queries = _collect_queries(inputs)
        pred_dir = osp.join(out_dir, pred_out_dir) if (
            out_dir and pred_out_dir) else ''
        vis_dir = osp.join(out_dir, img_out_dir) if (
            out_dir and img_out_dir) else ''
        stems = _unique_stems(queries)
        out_files = self._plan_outputs(stems, pred_dir, vis_dir, force)

        predictions: List = [None] * len(queries)
        visualizations: List = [None] * len(queries)
        failed: List[str] = []
        # sys.stdout looked up now, so that redirections of it are honoured.
        progress = ProgressBar(
            len(queries), file=sys.stdout) if show_progress else None
        for start in range(0, len(queries), batch_size):
            batch_ids, batch_imgs = [], []
            for idx in range(start, min(start + batch_size, len(queries))):
                source, name = queries[idx]
                try:
                    img = _read_image(source, name, what='query image')
                except (ValueError, FileNotFoundError) as err:
                    print_log(
                        f'Skipped query {name!r}: {err}',
                        logger='current',
                        level=logging.ERROR)
                    failed.append(name)
                    if progress is not None:
                        progress.update()
                    continue
                batch_ids.append(idx)
                batch_imgs.append(img)
            if not batch_ids:
                continue
            results = self._predict_batch(batch_imgs, reuse_supports)
            for idx, img, (mask, prob, logits) in zip(batch_ids, batch_imgs,
                                                      results):
                source, name = queries[idx]
                pred_file, vis_file = out_files[idx]
                vis = None
                if vis_file or return_vis:
                    vis = draw_few_shot_overlay(img, mask,
                                                self._supports['imgs'],
                                                self._supports['masks'])
                if vis_file:
                    mmcv.imwrite(vis, vis_file)
                if pred_file:
                    mmcv.imwrite(mask * np.uint8(255), pred_file)
                if return_vis:
                    visualizations[idx] = vis
                predictions[idx] = self._format_prediction(
                    mask, prob, logits, source, img, return_probs,
                    return_datasamples)
                if progress is not None:
                    progress.update()
        if progress is not None:
            # ProgressBar does not end its line.
            progress.file.write('\n')
            progress.file.flush()

        if pred_dir or vis_dir:
            written = [d for d in (pred_dir, vis_dir) if d]
            print_log(
                f'Wrote results of {len(queries) - len(failed)} queries to '
                + ' and '.join(written),
                logger='current')
        img_paths = [src if isinstance(src, str) else None
                     for src, _ in queries]
        if not return_vis:
            visualizations = []
        if single:
            predictions = predictions[0]
            visualizations = visualizations[0] if visualizations else []
        return dict(
            predictions=predictions,
            visualization=visualizations,
            img_paths=img_paths,
            failed=failed)

    def _plan_outputs(self, stems: List[str], pred_dir: str, vis_dir: str,
                      force: bool) -> List[Tuple[str, str]]:
        """Name every result file and refuse to overwrite without force."""
        out_files = []
        for stem in stems:
            pred_file = osp.join(pred_dir, stem + '.png') if pred_dir else ''
            vis_file = osp.join(vis_dir, stem + '.jpg') if vis_dir else ''
            out_files.append((pred_file, vis_file))
        if not force:
            existing = [f for pair in out_files for f in pair
                        if f and osp.exists(f)]
            if existing:
                shown = ', '.join(existing[:3])
                more = (f' and {len(existing) - 3} more'
                        if len(existing) > 3 else '')
                raise FileExistsError(
                    f'Result file(s) already exist: {shown}{more}. Choose '
                    'another output folder, or pass force=True (--force) to '
                    'overwrite them.')
        return out_files

    def _predict_batch(
        self, imgs: List[np.ndarray], reuse_supports: bool
    ) -> List[Tuple[np.ndarray, np.ndarray, torch.Tensor]]:
        """Run one batch of queries; results at each original size."""
        query_t = self._normalize(
            torch.stack([self._image_to_tensor(img) for img in imgs]))
        supports = self._supports
        with torch.no_grad():
            if reuse_supports:
                logits = self.model.predict_logits(
                    query_t, supports=supports['encoded'])
            else:
                num = len(imgs)
                s_imgs = supports['net_imgs'].unsqueeze(0).expand(
                    num, -1, -1, -1, -1).contiguous()
                s_masks = supports['net_masks'].unsqueeze(0).expand(
                    num, -1, -1, -1).contiguous()
                logits = self.model.predict_logits(query_t, s_imgs, s_masks)
            results = []
            for i, img in enumerate(imgs):
                ori_logits = F.interpolate(
                    logits[i:i + 1],
                    size=img.shape[:2],
                    mode='bilinear',
                    align_corners=True)[0]
                mask = ori_logits.argmax(dim=0).to(torch.uint8)
                prob = ori_logits.softmax(dim=0)[1]
                results.append((mask.cpu().numpy(), prob.cpu().numpy(),
                                ori_logits.cpu()))
        return results

    def _format_prediction(self, mask: np.ndarray, prob: np.ndarray,
                           logits: torch.Tensor, source: Union[str,
                                                               np.ndarray],
                           img: np.ndarray, return_probs: bool,
                           return_datasamples: bool):
        """Pack one query's result the way the caller asked for."""
        if return_datasamples:
            sample = SegDataSample(
                metainfo=dict(
                    img_path=source if isinstance(source, str) else None,
                    ori_shape=img.shape[:2],
                    img_shape=self.img_size,
                    support_img_paths=list(self._supports['paths']),
                    shots=self.num_shots))
            sample.pred_sem_seg = PixelData(
                data=torch.from_numpy(mask).long()[None])
            sample.seg_logits = PixelData(data=logits)
            sample.set_data(dict(fg_prob=PixelData(
                data=torch.from_numpy(prob)[None])))
            return sample
        if return_probs:
            return dict(sem_seg=mask, fg_prob=prob)
        return mask

    # ------------------------------------------------------------------
    # Preprocessing
    # ------------------------------------------------------------------
    def _image_to_tensor(self, img: np.ndarray) -> torch.Tensor:
        """Resize a BGR ``uint8`` image (Pillow bilinear) to ``[3, h, w]``.

        The result stays ``uint8`` BGR; :meth:`_normalize` converts it.
        """
        h, w = self.img_size
        resized = mmcv.imresize(
            img, (w, h),
            interpolation=self._interpolation,
            backend=self._resize_backend)
        return torch.from_numpy(np.ascontiguousarray(resized)).permute(
            2, 0, 1)

    def _normalize(self, imgs: torch.Tensor) -> torch.Tensor:
        """Normalise as the model's data_preprocessor, on its device."""
        return self.model.data_preprocessor.normalize(imgs.to(self.device))

    def _mask_to_tensor(self, mask: np.ndarray) -> torch.Tensor:
        """Resize a boolean mask (nearest) to a float 0/1 tensor."""
        tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
        resized = F.interpolate(tensor, size=self.img_size, mode='nearest')
        return resized[0, 0]


def draw_few_shot_overlay(query_img: np.ndarray,
                          query_mask: np.ndarray,
                          support_imgs: Sequence[np.ndarray],
                          support_masks: Sequence[np.ndarray],
                          alpha: float = 0.5) -> np.ndarray:
    """Draw a query with its mask tinted and the supports small beside it.

    Args:
        query_img (np.ndarray): BGR ``uint8`` query, ``HxWx3``.
        query_mask (np.ndarray): Its binary mask, ``HxW``.
        support_imgs (Sequence[np.ndarray]): BGR ``uint8`` support images.
        support_masks (Sequence[np.ndarray]): Their binary masks.
        alpha (float): Opacity of the tint. Defaults to 0.5.

    Returns:
        np.ndarray: BGR ``uint8`` picture, the query on the left and the
        supports (with their masks tinted) in a column grid on the right.
    """
    canvas = _tint(query_img, query_mask, QUERY_COLOR, alpha)
    height = canvas.shape[0]
    num = len(support_imgs)
    rows = min(num, 3)
    cols = math.ceil(num / rows)
    cell = max(height // 3, 1)
    gap = max(cell // 16, 2)
    panel = np.full((height, gap + cols * (cell + gap), 3), 255, np.uint8)
    for k, (img, mask) in enumerate(zip(support_imgs, support_masks)):
        scale = cell / max(img.shape[:2])
        th = max(int(round(img.shape[0] * scale)), 1)
        tw = max(int(round(img.shape[1] * scale)), 1)
        # Tint after shrinking, so that the mask's outline stays visible.
        thumb = _tint(
            mmcv.imresize(img, (tw, th), interpolation='area'),
            mmcv.imresize(
                mask.astype(np.uint8), (tw, th), interpolation='nearest'),
            SUPPORT_COLOR, alpha)
        row, col = k % rows, k // rows
        y0 = row * cell + (cell - th) // 2
        x0 = gap + col * (cell + gap) + (cell - tw) // 2
        panel[y0:y0 + th, x0:x0 + tw] = thumb
    return np.concatenate([canvas, panel], axis=1)


def _tint(img: np.ndarray, mask: np.ndarray, color: Tuple[int, int, int],
          alpha: float) -> np.ndarray:
    """A copy of ``img`` with ``color`` blended where ``mask``.

    The mask's inner boundary (about 1/150 of the image size, at least one
    pixel) is drawn in the plain colour, so that the outline stays visible
    on busy pictures; pixels outside the mask are left unchanged.
    """
    out = img.astype(np.float32)
    sel = mask.astype(bool)
    color_arr = np.asarray(color, np.float32)
    out[sel] = out[sel] * (1 - alpha) + color_arr * alpha
    width = max(min(mask.shape) // 150, 1)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    inner = cv2.erode(sel.astype(np.uint8), kernel,
                      borderType=cv2.BORDER_REPLICATE).astype(bool)
    out[sel & ~inner] = color_arr
    return out.round().clip(0, 255).astype(np.uint8)


def _as_list(items) -> list:
    """Wrap a single image/mask into a list; copy a sequence into a list."""
    if items is None:
        return []
    if isinstance(items, (str, Path, np.ndarray)):
        return [items]
    return list(items)


def _name_of(item: ImageType, fallback: str) -> str:
    """A name for messages: the path, or ``fallback`` for arrays."""
    if isinstance(item, (str, Path)):
        return str(item)
    return fallback


def _read_image(source: ImageType, name: str, what: str) -> np.ndarray:
    """Read an image (path or array) as BGR ``uint8`` ``HxWx3``.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: The file cannot be decoded, or the array is not an image.
    """
    if isinstance(source, (str, Path)):
        path = str(source)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist.')
        try:
            img = mmcv.imread(
                path, flag='color', channel_order='bgr', backend='pillow')
        except Exception as err:  # PIL raises several types on bad files
            raise ValueError(
                f'could not read {what} {path!r} as an image ({err}).'
            ) from err
        if img is None:
            raise ValueError(f'could not read {what} {path!r} as an image.')
        return img
    if not isinstance(source, np.ndarray):
        raise ValueError(f'A {what} must be a file path or a numpy array, '
                         f'got {type(source).__name__}.')
    img = source
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(
            f'{name} must be a uint8 HxWx3 (BGR) or HxW array, got dtype '
            f'{img.dtype} and shape {tuple(source.shape)}.')
    if min(img.shape[:2]) < 1:
        raise ValueError(f'{name} is empty: shape {tuple(img.shape)}.')
    return img


def _read_mask(source: ImageType, name: str) -> np.ndarray:
    """Read a binary mask (path or array) as a boolean ``HxW`` array.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: The file cannot be decoded, or the array is not a mask.
    """
    if isinstance(source, (str, Path)):
        path = str(source)
        if not osp.isfile(path):
            raise FileNotFoundError(f'support mask {path!r} does not exist.')
        try:
            mask = mmcv.imread(path, flag='unchanged', backend='pillow')
        except Exception as err:  # PIL raises several types on bad files
            raise ValueError(
                f'could not read support mask {path!r} as an image ({err}).'
            ) from err
        if mask is None:
            raise ValueError(
                f'could not read support mask {path!r} as an image.')
    elif isinstance(source, np.ndarray):
        mask = source
    else:
        raise ValueError('A support mask must be a file path or a numpy '
                         f'array, got {type(source).__name__}.')
    if mask.ndim == 3:
        mask = mask[..., :3].max(axis=2) if mask.shape[2] >= 3 else mask[...,
                                                                         0]
    if mask.ndim != 2 or min(mask.shape) < 1:
        raise ValueError(f'support mask {name!r} must be an HxW (or HxWxC) '
                         f'binary mask, got shape {tuple(mask.shape)}.')
    if mask.dtype == bool:
        return mask.copy()
    mask = mask.astype(np.float64)
    threshold = 0.5 if mask.max() <= 1 else 128
    return mask >= threshold


def _collect_queries(
        inputs: InputsType) -> List[Tuple[Union[str, np.ndarray], str]]:
    """Expand query inputs into (source, name) pairs.

    Raises:
        FileNotFoundError: A path that does not exist.
        ValueError: An empty folder, no query at all, or a bad input type.
    """
    items = _as_list(inputs)
    queries = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            name = f'query array #{i}'
            _read_image(item, name, what=name)  # checks dtype and shape
            queries.append((item, name))
            continue
        if not isinstance(item, (str, Path)):
            raise ValueError('A query must be a file path, a folder or a '
                             f'numpy array, got {type(item).__name__}.')
        path = str(item)
        if osp.isdir(path):
            files = sorted(
                f for f in os.listdir(path)
                if f.lower().endswith(IMG_EXTENSIONS)
                and osp.isfile(osp.join(path, f)))
            if not files:
                raise ValueError(
                    f'Query folder {path!r} holds no image (looked for '
                    f'{", ".join(IMG_EXTENSIONS)}).')
            queries.extend((osp.join(path, f), osp.join(path, f))
                           for f in files)
        elif osp.isfile(path):
            queries.append((path, path))
        else:
            raise FileNotFoundError(
                f'Query {path!r} does not exist (expected an image file or '
                'a folder of images).')
    if not queries:
        raise ValueError('No query image given.')
    return queries


def _unique_stems(
        queries: List[Tuple[Union[str, np.ndarray], str]]) -> List[str]:
    """File stems for the results: the query's name, suffixed if repeated."""
    stems, seen = [], set()
    for i, (source, _) in enumerate(queries):
        if isinstance(source, str):
            stem = osp.splitext(osp.basename(source))[0]
        else:
            stem = f'{i:08d}'
        unique, n = stem, 1
        while unique in seen:
            unique = f'{stem}_{n}'
            n += 1
        seen.add(unique)
        stems.append(unique)
    return stems


def _resolve_img_size(
        img_size: Optional[Union[int, Sequence[int]]],
        cfg: Optional[Config]) -> Tuple[int, int]:
    """The network input size (h, w): given, from the config, or 384."""
    if img_size is None and cfg is not None:
        img_size = _img_size_from_cfg(cfg)
    if img_size is None:
        img_size = 384
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    img_size = tuple(int(s) for s in img_size)
    if len(img_size) != 2 or min(img_size) < 1:
        raise ValueError('img_size must be a positive int or (h, w), got '
                         f'{img_size}.')
    return img_size


def _img_size_from_cfg(cfg: Config) -> Optional[Tuple[int, int]]:
    """The (h, w) the config's test pipeline resizes episodes to, if any."""
    transform = _resize_transform_of(cfg)
    if transform is None or transform.get('scale') is None:
        return None
    scale = transform['scale']
    if isinstance(scale, int):
        return (scale, scale)
    return (scale[1], scale[0])  # ResizeEpisode's scale is (w, h)


def _resize_transform_of(cfg: Optional[Config]) -> Optional[dict]:
    """The ``ResizeEpisode`` step of the config's test pipeline, if any."""
    if cfg is None:
        return None
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return None
    for transform in pipeline:
        if transform.get('type') == 'ResizeEpisode':
            return transform
    return None
