# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from ...structures import BlockFeatures, EncodedSupports
from ..utils.cpu_workers import map_on_cpu_workers
from ..utils.fast_paths import (REMOVED_SWITCHES, FastPathMixin,
                                refuse_removed_switches,
                                set_fast_paths)
from ..utils.precision import check_amp, inference_precision
from .episode_tensors import (check_backbone_and_head, check_encoded,
                              check_episode, check_images, check_masks,
                              check_speed_options,
                              stack_supports, take_images)
from ...utils.checks import check_keys, strict_arguments

#: Keys of ``test_cfg`` the segmentor reads (of ``train_cfg``: none).
TEST_CFG_KEYS = ('resize_to_original', 'amp')
TRAIN_CFG_NOTE = ('The segmentor reads no model.train_cfg key (the '
                  'training loop is the top-level train_cfg).')


@MODELS.register_module()
@strict_arguments(ignore=REMOVED_SWITCHES)
class FewShotSegmentor(FastPathMixin, BaseSegmentor):
    """Few-shot segmentor: frozen block-feature backbone + few-shot head.

    The backbone runs once over the query images and all support images of
    the batch (concatenated), its block features are split back into query
    and support features, and the head (e.g. :class:`DCAMAHead`) turns them
    and the support masks into 2-class logits for the queries.

    Fast path: on the CPU, an eval-mode backbone runs over one image at a
    time instead of one batch of queries and supports (large CPU batches
    run slower per image: the activations leave the caches); the features
    are assembled without a copy where possible.

    The episode comes from the data samples (docs/developer_contract.md):
    ``inputs`` holds the normalised query images ``[B, 3, H, W]`` and each
    :class:`SegDataSample` holds ``support_imgs`` ``[K, 3, H, W]``
    (normalised by :class:`FewShotDataPreProcessor`) and ``support_masks``
    ``[K, H, W]``.

    Args:
        backbone (dict): Backbone config; it must return a tuple of 4 lists of
            block features and expose ``num_blocks`` and ``out_channels``.
        decode_head (dict): Head config.
        data_preprocessor (dict, optional): Data preprocessor config.
            Defaults to None.
        train_cfg (dict, optional): Unused, kept for mmseg compatibility:
            None or empty (a key raises). Defaults to None.
        test_cfg (dict, optional): ``resize_to_original`` (bool): predict at
            each sample's ``ori_shape`` instead of the network size;
            ``amp`` (bool | str): inference under autocast, ``'auto'``/True,
            ``'bfloat16'`` or ``'float16'`` (:mod:`..utils.precision`); another
            key raises. Defaults to None (network size, fp32).
        fast_paths (bool, optional): Turn every fast path of the model on
            or off (:mod:`dcama_mm.models.utils.fast_paths`). Defaults to
            None: the environment's choice (``DCAMA_MM_FAST_PATHS``, on
            when unset).
        cpu_parallel_images (int, optional): Trades memory for speed on
            the CPU: where the backbone runs image by image (its fast path
            there), run this many images at once on separate threads, each
            with an equal share of torch's threads (the same result; faster
            for Swin, whose many small operations split poorly over
            threads; each image in flight holds its activations and a
            thread's malloc arena). Defaults to None (one at a time).
        pretrained (str, optional): Not supported (mmseg's ``init_model``
            sets it to None): the backbone's weights come from its
            ``init_cfg``. Defaults to None.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 fast_paths: Optional[bool] = None,
                 cpu_parallel_images: Optional[int] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        refuse_removed_switches('FewShotSegmentor', kwargs)
        check_keys('FewShotSegmentor', 'model.train_cfg key',
                   train_cfg or {}, (), TRAIN_CFG_NOTE)
        check_keys('FewShotSegmentor', 'model.test_cfg key', test_cfg or {},
                   TEST_CFG_KEYS)
        check_speed_options(cpu_parallel_images, fast_paths)
        if pretrained is not None:
            raise ValueError(
                'FewShotSegmentor does not take `pretrained`: give the '
                "backbone's weights with backbone.init_cfg=dict("
                "type='Pretrained', checkpoint=...).")
        if isinstance(data_preprocessor, dict):
            # mmseg's registry (not mmengine's, which BaseModel would use)
            # so that it builds without a default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.decode_head = MODELS.build(decode_head)
        self.align_corners = self.decode_head.align_corners
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg if test_cfg is not None else dict()
        check_amp(self.test_cfg.get('amp'), 'FewShotSegmentor: test_cfg.amp')
        self.cpu_parallel_images = cpu_parallel_images
        if fast_paths is not None:
            set_fast_paths(self, fast_paths)
        check_backbone_and_head(self.backbone, self.decode_head)

    def fast_paths_for(self, device: torch.device, dtype: torch.dtype,
                       training: bool) -> Tuple[str, ...]:
        if device.type != 'cpu' or (training and not self.backbone.frozen):
            return ()
        workers = self.cpu_parallel_images or 1
        return ('CPU backbone image by image' +
                (f', {workers} at once' if workers > 1 else ''), )

    # ------------------------------------------------------------------
    # features
    # ------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor) -> BlockFeatures:
        """Block features of the backbone.

        A frozen backbone (the default, as in DCAMA) runs without gradients;
        one built with ``frozen=False`` is trained with the head.

        Args:
            inputs (Tensor): Normalised images ``[N, 3, H, W]``.

        Returns:
            tuple[list[Tensor]]: 4 lists of ``[N, C_s, h_s, w_s]``.
        """
        chunks = self._backbone_chunks(inputs)
        return take_images(chunks, 0, inputs.shape[0])

    def _backbone_chunks(self, inputs: Tensor) -> List[BlockFeatures]:
        """The backbone's features of consecutive groups of ``inputs`` (one
        group, or one image each on the CPU fast path)."""
        if getattr(self.backbone, 'frozen', True):
            with torch.no_grad():
                return self._run_backbone(inputs)
        return self._run_backbone(inputs)

    def _run_backbone(self, inputs: Tensor) -> List[BlockFeatures]:
        if (not self.fast_paths or inputs.shape[0] <= 1
                or inputs.device.type != 'cpu' or self.backbone.training):
            return [self.backbone(inputs)]
        # one worker (None) simply loops over the images
        return map_on_cpu_workers(self.backbone, inputs.split(1),
                                  self.cpu_parallel_images or 1)

    @inference_precision
    def encode_supports(self, support_imgs: Tensor,
                        support_masks: Tensor) -> EncodedSupports:
        """Encode one support set once, for reuse over many queries.

        Args:
            support_imgs (Tensor): Normalised support images ``[K, 3, H, W]``
                or ``[1, K, 3, H, W]``.
            support_masks (Tensor): Support masks ``[K, H, W]`` or
                ``[1, K, H, W]`` (0/1).

        Returns:
            EncodedSupports: The features and masks, to pass to
            :meth:`predict_logits` or :meth:`predict` as ``supports``.
        """
        if isinstance(support_imgs, Tensor) and support_imgs.dim() == 4:
            support_imgs = support_imgs.unsqueeze(0)
        if isinstance(support_masks, Tensor) and support_masks.dim() == 3:
            support_masks = support_masks.unsqueeze(0)
        check_images('support_imgs', support_imgs, 5)
        if support_imgs.shape[0] != 1:
            raise ValueError(
                'encode_supports encodes ONE support set: support_imgs must '
                f'be [K, 3, H, W] or [1, K, 3, H, W], got '
                f'{tuple(support_imgs.shape)}.')
        masks = check_masks(support_imgs, support_masks)
        feats = self.extract_feat(support_imgs.flatten(0, 1))
        feats = tuple([f.unsqueeze(0) for f in stage] for stage in feats)
        return EncodedSupports(feats=feats, masks=masks)

    @inference_precision
    def predict_logits(self,
                       query_imgs: Tensor,
                       support_imgs: Optional[Tensor] = None,
                       support_masks: Optional[Tensor] = None,
                       supports: Optional[EncodedSupports] = None
                       ) -> Tensor:
        """2-class logits of a batch of episodes.

        Args:
            query_imgs (Tensor): Normalised queries ``[B, 3, H, W]``.
            support_imgs (Tensor, optional): Normalised supports
                ``[B, K, 3, H, W]``. Omit when ``supports`` is given.
            support_masks (Tensor, optional): Support masks
                ``[B, K, H, W]`` (0/1). Omit when ``supports`` is given.
            supports (EncodedSupports, optional): One support set encoded by
                :meth:`encode_supports`, shared by all B queries.
                Defaults to None.

        Returns:
            Tensor: Logits ``[B, 2, H, W]``.
        """
        check_images('query_imgs', query_imgs, 4)
        batch = query_imgs.shape[0]
        if supports is not None:
            if support_imgs is not None or support_masks is not None:
                raise ValueError(
                    'Pass either support_imgs/support_masks or supports '
                    '(from encode_supports), not both.')
            check_encoded(supports, query_imgs)
            return self._head_on_encoded(
                self.extract_feat(query_imgs), supports, batch)
        masks = check_episode(query_imgs, support_imgs, support_masks)
        query_feats, support_feats = self._encode_episodes(
            query_imgs, support_imgs)
        return self.decode_head((query_feats, support_feats, masks))

    @inference_precision
    def predict_logits_n_way(
            self, query_imgs: Tensor,
            support_sets: Sequence[EncodedSupports]) -> Tensor:
        """2-class logits of queries against each of N support sets.

        The backbone runs once over the queries; the head once per set.
        Class ``n`` of the result equals ``predict_logits(query_imgs,
        supports=support_sets[n])``.

        Args:
            query_imgs (Tensor): Normalised queries ``[B, 3, H, W]``.
            support_sets (Sequence[EncodedSupports]): N >= 1 support sets
                (e.g. one per class), from :meth:`encode_supports`.

        Returns:
            Tensor: Logits ``[B, N, 2, H, W]``.
        """
        check_images('query_imgs', query_imgs, 4)
        if not support_sets:
            raise ValueError('predict_logits_n_way needs >= 1 support set.')
        for supports in support_sets:
            check_encoded(supports, query_imgs)
        query_feats = self.extract_feat(query_imgs)
        batch = query_imgs.shape[0]
        return torch.stack([
            self._head_on_encoded(query_feats, supports, batch)
            for supports in support_sets
        ], dim=1)

    def _head_on_encoded(self, query_feats: BlockFeatures,
                         supports: EncodedSupports, batch: int) -> Tensor:
        """The head on query features and one encoded support set."""
        support_feats = tuple([f.expand(batch, *f.shape[1:]) for f in stage]
                              for stage in supports.feats)
        masks = supports.masks.expand(batch, *supports.masks.shape[1:])
        return self.decode_head((query_feats, support_feats, masks))

    def _encode_episodes(
            self, query_imgs: Tensor,
            support_imgs: Tensor) -> Tuple[BlockFeatures, BlockFeatures]:
        """Run the backbone once over queries and supports."""
        batch, shots = support_imgs.shape[:2]
        chunks = self._backbone_chunks(
            torch.cat((query_imgs, support_imgs.flatten(0, 1)), dim=0))
        query_feats = take_images(chunks, 0, batch)
        support_feats = tuple([
            f.reshape(batch, shots, *f.shape[1:]) for f in stage
        ] for stage in take_images(chunks, batch, batch * (shots + 1)))
        return query_feats, support_feats

    # ------------------------------------------------------------------
    # mmseg interface
    # ------------------------------------------------------------------
    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None,
                 supports: Optional[EncodedSupports] = None) -> Tensor:
        """Network forward: the logits ``[B, 2, H, W]``."""
        if supports is not None:
            return self.predict_logits(inputs, supports=supports)
        support_imgs, support_masks = stack_supports(
            inputs, data_samples)
        return self.predict_logits(inputs, support_imgs, support_masks)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Not available: a few-shot episode needs support images.

        Use :meth:`predict_logits` (or ``forward(mode='tensor')`` with data
        samples carrying the supports).
        """
        raise NotImplementedError(
            'FewShotSegmentor cannot segment from query images alone; use '
            'predict_logits(query_imgs, support_imgs, support_masks).')

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Cross-entropy of the query logits against ``gt_sem_seg``.

        Args:
            inputs (Tensor): Normalised queries ``[B, 3, H, W]``.
            data_samples (list[SegDataSample]): Episodes (supports and
                ``gt_sem_seg``).

        Returns:
            dict[str, Tensor]: ``loss_ce`` and ``acc_seg``.
        """
        logits = self._forward(inputs, data_samples)
        return self.decode_head.loss_by_feat(logits, data_samples)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None,
                supports: Optional[EncodedSupports] = None,
                resize_to_original: Optional[bool] = None) -> SampleList:
        """Predict the query masks.

        Args:
            inputs (Tensor): Normalised queries ``[B, 3, H, W]``.
            data_samples (list[SegDataSample]): Episodes (their supports
                are used unless ``supports`` is given).
            supports (EncodedSupports, optional): One support set for all
                queries, encoded by :meth:`encode_supports`. Defaults to
                None.
            resize_to_original (bool, optional): Predict at each sample's
                ``ori_shape``. Defaults to None: ``test_cfg``'s setting.

        Returns:
            list[SegDataSample]: The samples with ``seg_logits``
            (``[2, h, w]``) and ``pred_sem_seg`` (``[1, h, w]``, 0/1), at
            the network size, or at ``ori_shape`` when
            ``test_cfg.resize_to_original`` is true.
        """
        logits = self._forward(inputs, data_samples, supports)
        return self.postprocess_result(logits, data_samples,
                                       resize_to_original)

    def resize_logits(self,
                      logits: Tensor,
                      sample: SegDataSample,
                      resize_to_original: Optional[bool] = None) -> Tensor:
        """``[C, h, w]`` logits of one sample at its ``ori_shape`` (bilinear,
        ``align_corners=True``) when ``resize_to_original`` (None:
        ``test_cfg``'s setting), else as they are."""
        if resize_to_original is None:
            resize_to_original = bool(
                self.test_cfg.get('resize_to_original', False))
        if not resize_to_original:
            return logits
        if 'ori_shape' not in sample:
            raise ValueError('test_cfg.resize_to_original=True needs '
                             "ori_shape in the data samples' metainfo.")
        size = tuple(sample.ori_shape[:2])
        if size == tuple(logits.shape[-2:]):
            return logits
        return resize(
            logits[None],
            size=size,
            mode='bilinear',
            align_corners=True,
            warning=False)[0]

    def postprocess_result(
            self,
            seg_logits: Tensor,
            data_samples: OptSampleList = None,
            resize_to_original: Optional[bool] = None) -> SampleList:
        """Attach logits and argmax predictions to the data samples.

        At each sample's ``ori_shape`` when ``resize_to_original`` (None:
        ``test_cfg``'s setting): the logits are resized (bilinear,
        ``align_corners=True``) before the argmax.
        """
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(len(seg_logits))]
        for logits, sample in zip(seg_logits, data_samples):
            logits = self.resize_logits(logits, sample, resize_to_original)
            sample.set_data({
                'seg_logits':
                PixelData(data=logits),
                'pred_sem_seg':
                PixelData(data=logits.argmax(dim=0, keepdim=True))
            })
        return data_samples
