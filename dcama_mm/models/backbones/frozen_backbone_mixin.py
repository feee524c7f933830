# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List, Tuple

import torch
from torch import nn


class FrozenBackboneMixin:
    """Optional freezing of a block-feature backbone, as DCAMA does.

    Put it before the backbone's base class
    (``class BlockFeatureSwin(FrozenBackboneMixin, SwinTransformer)``),
    implement :meth:`_block_features` and call :meth:`_set_frozen` at the
    end of ``__init__``. A frozen backbone has ``requires_grad=False`` on
    every parameter, stays in eval mode whatever mode :meth:`train` is asked
    for (BatchNorm statistics, dropout and drop path fixed), and runs
    :meth:`forward` under :func:`torch.no_grad`. Unfrozen, it is an
    ordinary trainable backbone.
    """

    frozen: bool

    def _set_frozen(self, frozen: bool) -> None:
        """Record ``frozen`` and, when True, freeze the module now.

        Args:
            frozen (bool): Whether the backbone is frozen.
        """
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.train(False)

    def train(self, mode: bool = True) -> nn.Module:
        """Set the train mode; a frozen backbone always stays in eval mode.

        Args:
            mode (bool): The requested mode. Defaults to True.

        Returns:
            nn.Module: self.
        """
        super().train(False if self.frozen else mode)
        return self

    def forward(self, x: torch.Tensor) -> Tuple[List[torch.Tensor], ...]:
        """Every block's feature map, grouped per stage.

        Args:
            x (torch.Tensor): Images ``[N, 3, H, W]``.

        Returns:
            tuple[list[torch.Tensor]]: One list per stage, with
            ``num_blocks[s]`` maps ``[N, out_channels[s], h_s, w_s]``
            (see the backbone's docstring for what each map is).
        """
        if self.frozen:
            with torch.no_grad():
                return self._block_features(x)
        return self._block_features(x)

    def _block_features(self,
                        x: torch.Tensor) -> Tuple[List[torch.Tensor], ...]:
        """The computation of :meth:`forward`, without the ``no_grad``."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement `_block_features`.')
