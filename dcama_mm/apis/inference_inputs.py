# Copyright (c) dcama_mm contributors. All rights reserved.
"""The user's side of :class:`FewShotInferencer`: which files and arrays
it was given, and the names of the files it writes."""
import logging
import os
import os.path as osp
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image

from ..datasets.transforms.load_episode import as_image_array
from ..engine.option_checks import merge_cfg_options
from ..utils.output_files import (check_output_folder, existing_files,
                                  overwrite_refusal)

ImageType = Union[str, Path, np.ndarray]
InputsType = Union[ImageType, Sequence[ImageType]]
Query = Tuple[Union[str, np.ndarray], str]

#: File name endings taken as images when a folder is given as queries.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm', '.pgm')


def config_of(model: Union[str, Path, Config, ConfigDict, nn.Module],
              cfg_options: Optional[dict] = None) -> Config:
    """The config the inferencer is built from (a copy), with the options.

    Args:
        model: A config file, a loaded config, or a built model (its
            ``cfg``, or an empty config when it has none).
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.

    Raises:
        FileNotFoundError: A config path that does not exist.
        TypeError: Anything else.
    """
    if isinstance(model, nn.Module):
        cfg = getattr(model, 'cfg', None)
        cfg = Config() if cfg is None else cfg.copy()
    elif isinstance(model, (str, Path)):
        if not osp.isfile(str(model)):
            raise FileNotFoundError(
                f'Config file {model} does not exist: pass the path of a '
                'dcama_mm config, e.g. configs/dcama_swinb_coco_fold0.py.')
        cfg = Config.fromfile(str(model))
    elif isinstance(model, Config):
        cfg = model.copy()
    elif isinstance(model, ConfigDict):
        cfg = Config(model.to_dict())
    else:
        raise TypeError('model must be a config file, a Config or a built '
                        f'model, got {type(model).__name__}.')
    if cfg_options:
        merge_cfg_options(cfg, cfg_options)
    return cfg


#: The ``cfg_options`` key that sets the calls' ``resize_to_original``.
RESIZE_OPTION = 'model.test_cfg.resize_to_original'


def resize_option(cfg_options: Optional[dict]) -> bool:
    """``model.test_cfg.resize_to_original`` as ``cfg_options`` give it
    (any spelling mmengine merges: ``'model.test_cfg.resize_to_original'``,
    ``{'model.test_cfg': {...}}``, ...); True when they do not.

    Raises:
        ValueError: A value that is not a bool.
    """
    if not cfg_options:
        return True
    given = Config()
    given.merge_from_dict(dict(cfg_options))
    value = ((given.get('model') or {}).get('test_cfg')
             or {}).get('resize_to_original', True)
    if not isinstance(value, bool):
        raise ValueError(f'cfg_options {RESIZE_OPTION}={value!r}: give True '
                         'or False.')
    return value


def as_list(items) -> list:
    """Wrap a single image/mask into a list; copy a sequence into a list."""
    if items is None:
        return []
    if isinstance(items, (str, Path, np.ndarray)):
        return [items]
    return list(items)


def name_of(item: ImageType, fallback: str) -> str:
    """A name for messages: the path, or ``fallback`` for arrays."""
    if isinstance(item, (str, Path)):
        return str(item)
    return fallback


def is_single(inputs: InputsType) -> bool:
    """Whether ``inputs`` is one query (a file or an array, not a folder or
    a list), whose results are then returned unwrapped."""
    if isinstance(inputs, np.ndarray):
        return True
    return isinstance(inputs, (str, Path)) and not osp.isdir(inputs)


def _skipped(folder: str, name: str) -> str:
    """How a folder entry that is not an image file is named in the log."""
    path = osp.join(folder, name)
    if osp.islink(path) and not osp.exists(path):
        return f'{name}: a broken link'
    if osp.isdir(path):
        return f'{name}: a folder, not searched'
    return name


def folder_images(folder: str, shown: int = 5) -> List[str]:
    """The image files of a query folder (by ending, non-recursive),
    sorted by name; a warning names what else it holds (up to ``shown``
    entries: other files, subfolders, broken links)."""
    files, skipped = [], []
    for name in sorted(os.listdir(folder)):
        if name.lower().endswith(IMG_EXTENSIONS) and osp.isfile(
                osp.join(folder, name)):
            files.append(name)
        else:
            skipped.append(_skipped(folder, name))
    if skipped and files:
        more = f', ... ({len(skipped)})' if len(skipped) > shown else ''
        print_log(
            f'Query folder {folder!r}: {len(files)} image(s); skipped '
            f'{len(skipped)} entries that are not image files ('
            + ', '.join(skipped[:shown]) + more + ').',
            logger='current',
            level=logging.WARNING)
    return files


def collect_queries(inputs: InputsType) -> List[Query]:
    """Expand query inputs into ``(source, name)`` pairs.

    A folder gives its images (by ending, non-recursive) sorted by name
    (:func:`folder_images`: the log names what it skips).

    Raises:
        FileNotFoundError: A path that does not exist.
        ValueError: An empty folder, no query at all, or a bad input type
            or array.
    """
    queries: List[Query] = []
    for i, item in enumerate(as_list(inputs)):
        if isinstance(item, np.ndarray):
            name = f'query array #{i}'
            as_image_array(item, name)  # checks dtype and shape
            queries.append((item, name))
            continue
        if not isinstance(item, (str, Path)):
            raise ValueError('A query must be a file path, a folder or a '
                             f'numpy array, got {type(item).__name__}.')
        path = str(item)
        if osp.isdir(path):
            files = folder_images(path)
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


def result_names(queries: List[Query]) -> List[str]:
    """The name of each query's result files: its file name, extension
    included (``photos/a.jpg`` -> ``a.jpg``; the result files add ``.png``
    and ``.jpg``), or for an array its position in ``queries``, 8 digits.

    A name depends on its query alone, never on the other queries, so
    ``a.jpg``, ``a_1.jpg`` and ``a.png`` of one folder give ``a.jpg``,
    ``a_1.jpg`` and ``a.png``.

    Raises:
        ValueError: Two queries with the same file name (from different
            folders, or one file given twice), naming both.
    """
    names: List[str] = []
    first: dict = {}
    for i, (source, _) in enumerate(queries):
        name = osp.basename(source) if isinstance(source, str) else \
            f'{i:08d}'
        if name in first:
            raise ValueError(
                f'The queries {first[name]!r} and {source!r} have the same '
                f'file name {name!r}, and results are named after it: '
                'segment them into separate output folders (or rename '
                'one).')
        first[name] = source if isinstance(source, str) else \
            f'query array #{i}'
        names.append(name)
    return names


def plan_outputs(names: List[str], pred_dir: str, vis_dir: str,
                 force: bool) -> List[Tuple[str, str]]:
    """Name every result file, ``<name>.png`` (mask) and ``<name>.jpg``
    (overlay), ``''`` where none is written; refuse to overwrite an
    existing one without ``force``.

    Raises:
        FileExistsError: Naming up to three existing files.
    """
    out_files = []
    for name in names:
        pred_file = osp.join(pred_dir, name + '.png') if pred_dir else ''
        vis_file = osp.join(vis_dir, name + '.jpg') if vis_dir else ''
        out_files.append((pred_file, vis_file))
    if not force:
        existing = existing_files(f for pair in out_files for f in pair if f)
        if existing:
            raise FileExistsError(overwrite_refusal(
                existing, 'Result file(s)', 'choose another output folder',
                force='force=True (--force)'))
    return out_files


def log_names(queries: List[Query], files: List[Tuple[str, str]],
              out_dir: str, shown: int = 3) -> None:
    """Log the naming rule with the first ``shown`` query -> file pairs
    (files relative to ``out_dir``)."""
    pairs = [
        f'{name} -> '
        + ' + '.join(osp.relpath(f, out_dir) for f in pair if f)
        for (_, name), pair in zip(queries[:shown], files[:shown])
    ]
    more = f', ... ({len(queries)} queries)' if len(queries) > shown else ''
    kinds = [kind for kind, written in zip(
        ('<name>.png masks', '<name>.jpg overlays'), files[0]) if written]
    print_log(
        f'Results in {out_dir} are named after each query\'s file name, '
        f'extension included ({", ".join(kinds)}): '
        + ', '.join(pairs) + more,
        logger='current')


def write_label_png(path: str, labels: np.ndarray,
                    palette: Sequence[Tuple[int, int, int]]) -> None:
    """A label map as an indexed PNG (index = label; 0 black, class ``n``
    in ``palette[n - 1]``, RGB)."""
    picture = Image.fromarray(labels.astype(np.uint8), mode='P')
    flat = [0, 0, 0] + [c for color in palette for c in color]
    picture.putpalette(flat + [0] * (768 - len(flat)))
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    picture.save(path)


class InferenceResults:
    """The results of one inferencer call, gathered query by query.

    Plans (and refuses to overwrite, see :func:`plan_outputs`) the result
    files before any model work (an ``out_dir`` that is a file is refused
    with ``NotADirectoryError``), writes the pictures as they come, shows
    progress (from :meth:`start_progress`), and assembles the returned
    dict.

    Args:
        queries (list[tuple]): ``(source, name)`` of the queries.
        out_dir (str): Output folder ('' for none).
        img_out_dir (str): Its pictures' sub-folder ('' for none).
        pred_out_dir (str): Its masks' sub-folder ('' for none).
        force (bool): Overwrite existing files.
        show_progress (bool): Show a progress bar.
        keep_predictions (bool): Keep every prediction for the returned
            dict; False keeps none (the memory then stays flat however
            many queries are written). Defaults to True.
    """

    def __init__(self,
                 queries: List[Query],
                 out_dir: str,
                 img_out_dir: str,
                 pred_out_dir: str,
                 force: bool,
                 show_progress: bool,
                 keep_predictions: bool = True) -> None:
        self.queries = queries
        if out_dir:
            check_output_folder(out_dir, 'out_dir',
                                (pred_out_dir, img_out_dir))
        self.pred_dir = osp.join(out_dir, pred_out_dir) if (
            out_dir and pred_out_dir) else ''
        self.vis_dir = osp.join(out_dir, img_out_dir) if (
            out_dir and img_out_dir) else ''
        self.files = plan_outputs(
            result_names(queries), self.pred_dir, self.vis_dir, force)
        if self.pred_dir or self.vis_dir:
            log_names(queries, self.files, out_dir)
        self.keep_predictions = keep_predictions
        self.predictions: list = [None] * len(queries) if \
            keep_predictions else []
        self.visualizations: list = [None] * len(queries)
        self.failed: List[str] = []
        self.show_progress = show_progress
        self.progress: Optional[ProgressBar] = None

    def start_progress(self) -> None:
        """Show the progress bar (when asked for), once the queries are
        about to run."""
        if self.show_progress:
            # sys.stdout looked up now, so that redirections of it are
            # honoured
            self.progress = ProgressBar(len(self.queries), file=sys.stdout)

    def write_mask(self, idx: int, labels: np.ndarray,
                   palette: Optional[list] = None) -> None:
        """Write query ``idx``'s mask (when masks are written): 0/255, or
        with a ``palette`` (N-way) an indexed label PNG."""
        pred_file = self.files[idx][0]
        if pred_file and palette is not None:
            write_label_png(pred_file, labels, palette)
        elif pred_file:
            mmcv.imwrite(labels * np.uint8(255), pred_file)

    def add(self, idx: int, prediction, vis: Optional[np.ndarray],
            keep_vis: bool) -> None:
        """Record query ``idx``'s prediction; write its picture."""
        if vis is not None and self.files[idx][1]:
            mmcv.imwrite(vis, self.files[idx][1])
        if keep_vis:
            self.visualizations[idx] = vis
        if self.keep_predictions:
            self.predictions[idx] = prediction
        if self.progress is not None:
            self.progress.update()

    def finish(self, single: bool, return_vis: bool) -> dict:
        """The call's result dict (see ``FewShotInferencer.__call__``)."""
        if self.progress is not None:
            # ProgressBar does not end its line.
            self.progress.file.write('\n')
            self.progress.file.flush()
        if self.pred_dir or self.vis_dir:
            written = [d for d in (self.pred_dir, self.vis_dir) if d]
            print_log(
                f'Wrote results of {len(self.queries) - len(self.failed)} '
                'queries to ' + ' and '.join(written),
                logger='current')
        predictions = self.predictions
        visualizations = self.visualizations if return_vis else []
        if single and predictions:
            predictions = predictions[0]
            visualizations = visualizations[0] if visualizations else []
        return dict(
            predictions=predictions,
            visualization=visualizations,
            img_paths=[s if isinstance(s, str) else None
                       for s, _ in self.queries],
            failed=self.failed)
