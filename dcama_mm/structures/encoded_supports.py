# Copyright (c) dcama_mm contributors. All rights reserved.
"""One support set encoded once, for reuse over many queries."""
from dataclasses import dataclass
from typing import List, Tuple

from torch import Tensor

#: Block features of a backbone: one list per stage, one map per block.
BlockFeatures = Tuple[List[Tensor], ...]


@dataclass(frozen=True)
class EncodedSupports:
    """The backbone features and masks of ONE support set.

    Made by :meth:`~dcama_mm.models.FewShotSegmentor.encode_supports` and
    passed to its ``predict_logits`` / ``predict`` as ``supports``: every
    query of a batch is then segmented against this set without running
    the backbone over the supports again.

    Attributes:
        feats (tuple[list[Tensor]]): Per stage, per block, the support
            features ``[1, K, C_s, h_s, w_s]``.
        masks (Tensor): The support masks ``[1, K, H, W]`` (float 0/1) at
            the network size.
    """

    feats: BlockFeatures
    masks: Tensor

    @property
    def shots(self) -> int:
        """int: The number of supports K."""
        return self.masks.shape[1]

    @property
    def size(self) -> Tuple[int, int]:
        """tuple[int, int]: The network size ``(H, W)`` they were encoded
        at."""
        return tuple(self.masks.shape[-2:])
