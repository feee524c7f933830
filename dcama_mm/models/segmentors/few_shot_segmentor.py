# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from ..utils.cpu_workers import map_on_cpu_workers

BlockFeatures = Tuple[List[Tensor], ...]


@MODELS.register_module()
class FewShotSegmentor(BaseSegmentor):
    """Few-shot segmentor: frozen block-feature backbone + few-shot head.

    The backbone runs once over the query images and all support images of
    the batch (concatenated), its block features are split back into query
    and support features, and the head (e.g. :class:`DCAMAHead`) turns them
    and the support masks into 2-class logits for the queries.

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
        train_cfg (dict, optional): Unused, kept for mmseg compatibility.
            Defaults to None.
        test_cfg (dict, optional): ``resize_to_original`` (bool): predict at
            each sample's ``ori_shape`` instead of the network size.
            Defaults to None (network size).
        cpu_backbone_batch_size (int, optional): On the CPU, run the
            backbone over at most this many images at a time (the query and
            support images of a batch are otherwise one backbone batch) and
            concatenate the features: the same result, faster, because a
            batch of 6 384x384 images runs slower per image than batches of
            1-2 on the CPU (measured: Swin-B by 12-30%, ResNet-50 by
            40-60%; the activations leave the caches).
            GPUs always run the whole batch. Only applied while the backbone
            is in eval mode (always so when frozen), where images are
            independent. Defaults to None (one batch).
        cpu_backbone_workers (int, optional): With
            ``cpu_backbone_batch_size``, run that many of those backbone
            batches at once on separate threads, each with an equal share of
            torch's intra-op threads (same result). Faster for Swin, whose
            many small operations split poorly over threads (2-core CPU,
            Swin-B, 2 images: 1.17-1.22 s on 2 workers x 1 thread against
            1.39-1.45 s on 1 x 2 threads); no gain measured for ResNet-50.
            Defaults to None (one at a time).
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 data_preprocessor: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 cpu_backbone_batch_size: Optional[int] = None,
                 cpu_backbone_workers: Optional[int] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        for name, value in (('cpu_backbone_batch_size',
                             cpu_backbone_batch_size),
                            ('cpu_backbone_workers', cpu_backbone_workers)):
            if value is not None and (not isinstance(value, int)
                                      or isinstance(value, bool)
                                      or value < 1):
                raise ValueError(
                    f'FewShotSegmentor: {name} must be a positive integer or '
                    f'None, got {value!r}.')
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
        self.cpu_backbone_batch_size = cpu_backbone_batch_size
        self.cpu_backbone_workers = cpu_backbone_workers
        self._check_compatible()

    def _check_compatible(self) -> None:
        """Check that the head was built for the backbone's features."""
        for attr in ('num_blocks', 'out_channels'):
            if not hasattr(self.backbone, attr):
                raise ValueError(
                    f'FewShotSegmentor needs a block-feature backbone '
                    f'exposing `{attr}` (e.g. BlockFeatureSwin, '
                    f'BlockFeatureResNet); got '
                    f'{type(self.backbone).__name__}.')
        head_blocks = getattr(self.decode_head, 'num_blocks', None)
        if head_blocks is not None and tuple(head_blocks) != tuple(
                self.backbone.num_blocks):
            raise ValueError(
                f'decode_head.num_blocks={tuple(head_blocks)} does not match '
                f'the backbone\'s blocks per stage '
                f'{tuple(self.backbone.num_blocks)}: set them equal in the '
                'config.')
        head_channels = self.decode_head.in_channels
        if tuple(head_channels) != tuple(self.backbone.out_channels):
            raise ValueError(
                f'decode_head.in_channels={tuple(head_channels)} does not '
                f'match the backbone\'s out_channels '
                f'{tuple(self.backbone.out_channels)}: set them equal in the '
                'config.')

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
        return self._take_images(chunks, 0, inputs.shape[0])

    def _backbone_chunks(self, inputs: Tensor) -> List[BlockFeatures]:
        """The backbone's features of consecutive groups of ``inputs`` (one
        group unless ``cpu_backbone_batch_size`` splits them)."""
        if getattr(self.backbone, 'frozen', True):
            with torch.no_grad():
                return self._run_backbone(inputs)
        return self._run_backbone(inputs)

    def _run_backbone(self, inputs: Tensor) -> List[BlockFeatures]:
        size = self.cpu_backbone_batch_size
        if (size is None or inputs.shape[0] <= size
                or inputs.device.type != 'cpu' or self.backbone.training):
            return [self.backbone(inputs)]
        # one worker (None) simply loops over the parts
        return map_on_cpu_workers(self.backbone, inputs.split(size),
                                  self.cpu_backbone_workers or 1)

    @staticmethod
    def _take_images(chunks: List[BlockFeatures], start: int,
                     stop: int) -> BlockFeatures:
        """Features of images ``[start, stop)`` from the backbone chunks: a
        view where one chunk holds them all (no copy of the features), else
        a concatenation."""
        bounds = []
        offset = 0
        for chunk in chunks:
            size = chunk[0][0].shape[0]
            lo, hi = max(start - offset, 0), min(stop - offset, size)
            if lo < hi:
                bounds.append((chunk, lo, hi))
            offset += size

        def take(stage: int, block: int) -> Tensor:
            pieces = [c[stage][block][lo:hi] for c, lo, hi in bounds]
            return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

        return tuple([take(stage, block) for block in range(len(feats))]
                     for stage, feats in enumerate(chunks[0]))

    @staticmethod
    def _check_images(name: str, imgs: Tensor, rank: int) -> None:
        if not isinstance(imgs, Tensor):
            raise ValueError(f'{name} must be a tensor, got {type(imgs)}.')
        if not imgs.is_floating_point():
            raise ValueError(
                f'{name} must be float (normalised) images, got '
                f'{imgs.dtype}; run them through FewShotDataPreProcessor '
                'first.')
        if imgs.dim() != rank or imgs.shape[-3] != 3:
            shape = '[B, 3, H, W]' if rank == 4 else '[B, K, 3, H, W]'
            raise ValueError(
                f'{name} must have shape {shape}, got {tuple(imgs.shape)}.')

    def encode_supports(self, support_imgs: Tensor,
                        support_masks: Tensor) -> Dict[str, object]:
        """Encode one support set once, for reuse over many queries.

        Args:
            support_imgs (Tensor): Normalised support images ``[K, 3, H, W]``
                or ``[1, K, 3, H, W]``.
            support_masks (Tensor): Support masks ``[K, H, W]`` or
                ``[1, K, H, W]`` (0/1).

        Returns:
            dict: ``feats`` (4 lists of ``[1, K, C_s, h_s, w_s]``) and
            ``masks`` (``[1, K, H, W]`` float), to pass to
            :meth:`predict_logits` as ``supports``.
        """
        if isinstance(support_imgs, Tensor) and support_imgs.dim() == 4:
            support_imgs = support_imgs.unsqueeze(0)
        if isinstance(support_masks, Tensor) and support_masks.dim() == 3:
            support_masks = support_masks.unsqueeze(0)
        self._check_images('support_imgs', support_imgs, 5)
        if support_imgs.shape[0] != 1:
            raise ValueError(
                'encode_supports encodes ONE support set: support_imgs must '
                f'be [K, 3, H, W] or [1, K, 3, H, W], got '
                f'{tuple(support_imgs.shape)}.')
        masks = self._check_masks(support_imgs, support_masks)
        feats = self.extract_feat(support_imgs.flatten(0, 1))
        feats = tuple([f.unsqueeze(0) for f in stage] for stage in feats)
        return dict(feats=feats, masks=masks)

    @staticmethod
    def _check_masks(support_imgs: Tensor, support_masks: Tensor) -> Tensor:
        if not isinstance(support_masks, Tensor) or support_masks.dim() != 4:
            raise ValueError(
                'support_masks must be a [B, K, H, W] tensor, got '
                f'{getattr(support_masks, "shape", type(support_masks))}.')
        if support_imgs.shape[1] == 0:
            raise ValueError('An episode needs at least one support image '
                             '(K >= 1), got K = 0.')
        expected = (support_imgs.shape[0], support_imgs.shape[1],
                    *support_imgs.shape[-2:])
        if tuple(support_masks.shape) != expected:
            raise ValueError(
                f'support_masks shape {tuple(support_masks.shape)} does not '
                f'match the support images: expected {expected} '
                '([B, K, H, W] at the image size).')
        return support_masks.to(support_imgs.dtype)

    def predict_logits(self,
                       query_imgs: Tensor,
                       support_imgs: Optional[Tensor] = None,
                       support_masks: Optional[Tensor] = None,
                       supports: Optional[Dict[str, object]] = None
                       ) -> Tensor:
        """2-class logits of a batch of episodes.

        Args:
            query_imgs (Tensor): Normalised queries ``[B, 3, H, W]``.
            support_imgs (Tensor, optional): Normalised supports
                ``[B, K, 3, H, W]``. Omit when ``supports`` is given.
            support_masks (Tensor, optional): Support masks
                ``[B, K, H, W]`` (0/1). Omit when ``supports`` is given.
            supports (dict, optional): One support set encoded by
                :meth:`encode_supports`, shared by all B queries.
                Defaults to None.

        Returns:
            Tensor: Logits ``[B, 2, H, W]``.
        """
        self._check_images('query_imgs', query_imgs, 4)
        batch = query_imgs.shape[0]
        if supports is not None:
            if support_imgs is not None or support_masks is not None:
                raise ValueError(
                    'Pass either support_imgs/support_masks or supports '
                    '(from encode_supports), not both.')
            masks = supports['masks']
            if tuple(masks.shape[-2:]) != tuple(query_imgs.shape[-2:]):
                raise ValueError(
                    f'The encoded supports are {tuple(masks.shape[-2:])} but '
                    f'the queries are {tuple(query_imgs.shape[-2:])}: resize '
                    'them to the same size.')
            query_feats = self.extract_feat(query_imgs)
            support_feats = tuple(
                [f.expand(batch, *f.shape[1:]) for f in stage]
                for stage in supports['feats'])
            masks = masks.expand(batch, *masks.shape[1:])
        else:
            if support_imgs is None or support_masks is None:
                raise ValueError(
                    'predict_logits needs support_imgs and support_masks '
                    '(or supports from encode_supports).')
            self._check_images('support_imgs', support_imgs, 5)
            masks = self._check_masks(support_imgs, support_masks)
            if support_imgs.shape[0] != batch:
                raise ValueError(
                    f'Batch mismatch: {batch} query images but '
                    f'{support_imgs.shape[0]} support sets.')
            if support_imgs.shape[-2:] != query_imgs.shape[-2:]:
                raise ValueError(
                    f'Query images are {tuple(query_imgs.shape[-2:])} but '
                    f'support images are {tuple(support_imgs.shape[-2:])}: '
                    'resize them to the same size.')
            query_feats, support_feats = self._encode_episodes(
                query_imgs, support_imgs)
        return self.decode_head((query_feats, support_feats, masks))

    def _encode_episodes(
            self, query_imgs: Tensor,
            support_imgs: Tensor) -> Tuple[BlockFeatures, BlockFeatures]:
        """Run the backbone once over queries and supports."""
        batch, shots = support_imgs.shape[:2]
        chunks = self._backbone_chunks(
            torch.cat((query_imgs, support_imgs.flatten(0, 1)), dim=0))
        query_feats = self._take_images(chunks, 0, batch)
        support_feats = tuple([
            f.reshape(batch, shots, *f.shape[1:]) for f in stage
        ] for stage in self._take_images(chunks, batch, batch * (shots + 1)))
        return query_feats, support_feats

    # ------------------------------------------------------------------
    # mmseg interface
    # ------------------------------------------------------------------
    @staticmethod
    def _stack_supports(inputs: Tensor,
                        data_samples: OptSampleList) -> Tuple[Tensor, Tensor]:
        """Stack ``support_imgs`` / ``support_masks`` of the samples."""
        if not data_samples:
            raise ValueError(
                'FewShotSegmentor needs data_samples carrying support_imgs '
                'and support_masks (see PackFewShotInputs).')
        if len(data_samples) != inputs.shape[0]:
            raise ValueError(f'{inputs.shape[0]} query images but '
                             f'{len(data_samples)} data samples.')
        for sample in data_samples:
            if 'support_imgs' not in sample or 'support_masks' not in sample:
                raise ValueError(
                    'Every data sample needs support_imgs and support_masks; '
                    'use PackFewShotInputs and FewShotDataPreProcessor.')
        imgs = [s.support_imgs for s in data_samples]
        masks = [s.support_masks for s in data_samples]
        if len({tuple(i.shape) for i in imgs}) != 1 or len(
            {tuple(m.shape)
             for m in masks}) != 1:
            raise ValueError(
                'All episodes of a batch need the same number of shots and '
                'image size, got support_imgs shapes '
                f'{[tuple(i.shape) for i in imgs]}.')
        return torch.stack(imgs), torch.stack(masks)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Network forward: the logits ``[B, 2, H, W]``."""
        support_imgs, support_masks = self._stack_supports(
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
                data_samples: OptSampleList = None) -> SampleList:
        """Predict the query masks.

        Args:
            inputs (Tensor): Normalised queries ``[B, 3, H, W]``.
            data_samples (list[SegDataSample]): Episodes.

        Returns:
            list[SegDataSample]: The samples with ``seg_logits``
            (``[2, h, w]``) and ``pred_sem_seg`` (``[1, h, w]``, 0/1), at
            the network size, or at ``ori_shape`` when
            ``test_cfg.resize_to_original`` is true.
        """
        logits = self._forward(inputs, data_samples)
        return self.postprocess_result(logits, data_samples)

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Attach logits and argmax predictions to the data samples."""
        to_original = bool(self.test_cfg.get('resize_to_original', False))
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(len(seg_logits))]
        for logits, sample in zip(seg_logits, data_samples):
            if to_original:
                if 'ori_shape' not in sample:
                    raise ValueError(
                        'test_cfg.resize_to_original=True needs ori_shape in '
                        'the data samples\' metainfo.')
                size = tuple(sample.ori_shape[:2])
                if size != tuple(logits.shape[-2:]):
                    logits = F.interpolate(
                        logits[None],
                        size=size,
                        mode='bilinear',
                        align_corners=True)[0]
            sample.set_data({
                'seg_logits':
                PixelData(data=logits),
                'pred_sem_seg':
                PixelData(data=logits.argmax(dim=0, keepdim=True))
            })
        return data_samples
