# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List, Optional, Tuple

import torch
from torch import nn

from ..utils.checkpoint_checks import check_pretrained_fits


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

    Pretrained weights (``init_cfg=dict(type='Pretrained', checkpoint=...,
    prefix=None)``) are checked before mmengine loads them (which it does
    with ``strict=False``): every weight of the backbone must be in the
    file with its shape and the file must have no other weight under the
    backbone's own names (a classifier's ``fc``/``head`` is ignored). Add
    ``strict=False`` to the ``init_cfg`` (``tools/train.py
    --load-partial``) to fine-tune from weights that fit only in part.
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

    def _pretrained_init_cfg(self) -> Optional[dict]:
        """The ``Pretrained`` entry of ``init_cfg`` (a dict or a list)."""
        init_cfgs = self.init_cfg if isinstance(self.init_cfg,
                                                list) else [self.init_cfg]
        for init_cfg in init_cfgs:
            if isinstance(init_cfg, dict) and init_cfg.get(
                    'type') == 'Pretrained':
                return init_cfg
        return None

    def init_weights(self) -> None:
        """Initialise, refusing ``Pretrained`` weights that do not fit.

        The ``strict`` key of the ``Pretrained`` entry (default True) is
        taken out before mmengine's ``PretrainedInit`` (which has no such
        argument) loads the file.

        Raises:
            CheckpointMismatchError: If ``strict`` and the weights do not
                fit (see :func:`~dcama_mm.models.utils.checkpoint_checks.
                check_pretrained_fits`).
        """
        pretrained = self._pretrained_init_cfg()
        if pretrained is not None and not getattr(self, '_is_init', False):
            strict = pretrained.pop('strict', True)
            check_pretrained_fits(
                self,
                pretrained['checkpoint'],
                prefix=pretrained.get('prefix'),
                strict=strict,
                option='model.backbone.init_cfg')
        super().init_weights()

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
