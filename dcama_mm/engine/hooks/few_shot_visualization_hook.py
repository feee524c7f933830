# Copyright (c) dcama_mm contributors. All rights reserved.
"""Draw few-shot episodes during validation and testing."""
import os.path as osp
from typing import Callable, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.fileio import get
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.utils import mkdir_or_exist

from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

from ...visualization.few_shot_local_visualizer import FewShotLocalVisualizer
from ...utils.checks import strict_arguments


@HOOKS.register_module()
@strict_arguments
class FewShotVisualizationHook(Hook):
    """Draw test (and validation) episodes with
    :class:`~dcama_mm.visualization.FewShotLocalVisualizer`.

    One picture per episode: the supports with their masks, the query with
    its ground truth and with the prediction, and the episode's class and
    foreground IoU in the title. ``tools/test.py --show-dir DIR`` turns it on
    (``draw=True``) and writes the pictures to
    ``work_dir/<timestamp>/DIR/episode_<index>_<class>.png`` (an absolute
    ``DIR`` is used as is). Without ``show_dir`` the pictures go to the
    visualizer's backends (e.g. TensorBoard).

    In validation, the first episode of every ``interval``-th batch is drawn
    to the backends; in testing every ``interval``-th episode is drawn.
    In a distributed test each rank draws its own episodes; with an
    :class:`~dcama_mm.datasets.EpisodeSampler` the episodes drawn are the
    same on any number of processes (``interval`` and ``max_episodes``
    count in the 1-process order) and the padding that evens out the ranks
    (a repeat of another rank's episode) is not drawn.

    Args:
        draw (bool): Whether to draw at all. Defaults to False.
        interval (int): Draw every ``interval``-th test episode / validation
            batch. Defaults to 1.
        show (bool): Show the pictures in a window. Defaults to False.
        wait_time (float): Seconds each shown picture stays. Defaults to 0.
        show_dir (str, optional): Directory for the test pictures, relative
            to ``work_dir/<timestamp>`` unless absolute. Defaults to None.
        max_episodes (int, optional): Draw at most this many test episodes
            (in all). Defaults to None (all).
        backend_args (dict, optional): File backend arguments to read
            images. Defaults to None.
    """

    priority = 'NORMAL'

    def __init__(self,
                 draw: bool = False,
                 interval: int = 1,
                 show: bool = False,
                 wait_time: float = 0.,
                 show_dir: Optional[str] = None,
                 max_episodes: Optional[int] = None,
                 backend_args: Optional[dict] = None) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}.')
        if max_episodes is not None and max_episodes < 0:
            raise ValueError(
                f'max_episodes must be >= 0 or None, got {max_episodes}.')
        self.draw = draw
        self.interval = interval
        self.show = show
        self.wait_time = wait_time
        self.show_dir = show_dir
        self.max_episodes = max_episodes
        self.backend_args = None if backend_args is None else dict(
            backend_args)
        self._test_count = 0
        self._out_dir: Optional[str] = None

    # ------------------------------------------------------------------
    # images of an episode
    # ------------------------------------------------------------------
    def _read_rgb(self, path: str) -> np.ndarray:
        """Read an image file as RGB ``uint8``."""
        img_bytes = get(path, backend_args=self.backend_args)
        return mmcv.imfrombytes(img_bytes, channel_order='rgb')

    def _query_image(self, data_input, sample: SegDataSample,
                     size: Sequence[int]) -> np.ndarray:
        """The query as RGB ``uint8`` at ``size`` (the prediction's size)."""
        if isinstance(data_input, torch.Tensor) and \
                data_input.dtype == torch.uint8 and \
                tuple(data_input.shape[-2:]) == tuple(size):
            return np.ascontiguousarray(
                data_input.permute(1, 2, 0).cpu().numpy()[..., ::-1])
        img = self._read_rgb(sample.img_path)
        if img.shape[:2] != tuple(size):
            img = mmcv.imresize(img, (size[1], size[0]))
        return img

    def _support_images(self, sample: SegDataSample) -> List[np.ndarray]:
        """The supports as RGB ``uint8`` at the size of their masks."""
        imgs = sample.get('support_imgs')
        if isinstance(imgs, torch.Tensor) and imgs.dtype == torch.uint8:
            return [
                np.ascontiguousarray(
                    img.permute(1, 2, 0).cpu().numpy()[..., ::-1])
                for img in imgs
            ]
        # After the data preprocessor the supports are normalised floats:
        # draw them from their files at the masks' size.
        masks = sample.support_masks
        height, width = masks.shape[-2:]
        return [
            mmcv.imresize(self._read_rgb(path), (width, height))
            for path in sample.support_img_paths
        ]

    def _draw(self, runner: Runner, data_input, sample: SegDataSample,
              name: str, step: int, out_file: Optional[str]) -> None:
        """Draw one episode."""
        visualizer = runner.visualizer
        if not isinstance(visualizer, FewShotLocalVisualizer):
            raise ValueError(
                'FewShotVisualizationHook needs visualizer.type='
                f'"FewShotLocalVisualizer", got {type(visualizer).__name__}; '
                'inherit configs/_base_/default_runtime.py or set it.')
        size = sample.pred_sem_seg.shape
        visualizer.add_datasample(
            name,
            self._query_image(data_input, sample, size),
            data_sample=sample,
            show=self.show,
            wait_time=self.wait_time,
            out_file=out_file,
            step=step,
            supports=self._support_images(sample))

    # ------------------------------------------------------------------
    # hook points
    # ------------------------------------------------------------------
    def before_test(self, runner: Runner) -> None:
        """Resolve the output directory of this test run."""
        self._test_count = 0
        if self.draw and self.show_dir is not None:
            self._out_dir = osp.join(runner.work_dir, runner.timestamp,
                                     self.show_dir)
            mkdir_or_exist(self._out_dir)

    def after_val_iter(self,
                       runner: Runner,
                       batch_idx: int,
                       data_batch: dict,
                       outputs: Sequence[SegDataSample]) -> None:
        """Draw the first episode of every ``interval``-th val batch."""
        if not self.draw or not outputs or not self.every_n_inner_iters(
                batch_idx, self.interval):
            return
        sample = outputs[0]
        index = sample.get('episode_index', batch_idx)
        self._draw(runner, data_batch['inputs'][0], sample,
                   f'val_episode_{int(index):05d}', runner.iter, None)

    def after_test_iter(self,
                        runner: Runner,
                        batch_idx: int,
                        data_batch: dict,
                        outputs: Sequence[SegDataSample]) -> None:
        """Draw every ``interval``-th test episode of the batch."""
        if not self.draw:
            return
        position = _global_position(runner.test_dataloader)
        for i, sample in enumerate(outputs):
            count = position(self._test_count)
            self._test_count += 1
            if count is None or count % self.interval:
                continue  # padding of the last rank, or not drawn
            if self.max_episodes is not None and \
                    count // self.interval >= self.max_episodes:
                continue
            index = int(sample.get('episode_index', count))
            class_name = runner.visualizer.class_name(
                sample.get('class_id')).replace(' ', '_').replace('/', '_')
            name = f'episode_{index:05d}_{class_name}'
            out_file = None if self._out_dir is None else osp.join(
                self._out_dir, f'{name}.png')
            self._draw(runner, data_batch['inputs'][i], sample, name, count,
                       out_file)
        if self._out_dir is not None and batch_idx + 1 == len(
                runner.test_dataloader):
            runner.logger.info(f'Episode pictures written to {self._out_dir}')


def _global_position(dataloader) -> Callable[[int], Optional[int]]:
    """Map this rank's n-th test sample to its position in the 1-process
    order (None: padding), through the dataloader's
    :class:`~dcama_mm.datasets.EpisodeSampler`; other samplers: n."""
    sampler = getattr(dataloader, 'sampler', None)
    if not hasattr(sampler, 'global_position'):
        sampler = getattr(getattr(dataloader, 'batch_sampler', None),
                          'sampler', None)
    if hasattr(sampler, 'global_position'):
        return sampler.global_position
    return lambda count: count
