# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                            OPTIMIZERS)
from ...utils.checks import check_arguments, check_keys, strict_arguments

#: The ``paramwise_cfg`` keys mmengine's constructor reads, and those of
#: each ``custom_keys`` entry.
PARAMWISE_KEYS = ('custom_keys', 'bias_lr_mult', 'bias_decay_mult',
                  'norm_decay_mult', 'dwconv_decay_mult', 'flat_decay_mult',
                  'bypass_duplicate', 'dcn_offset_lr_mult')
CUSTOM_KEY_KEYS = ('lr_mult', 'decay_mult')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
@strict_arguments
class FewShotOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Optimizer wrapper constructor that leaves frozen parameters out.

    Same options as mmengine's :class:`DefaultOptimWrapperConstructor`
    (``optimizer``, ``paramwise_cfg`` with ``custom_keys``,
    ``bias_decay_mult``, ...), but parameters with ``requires_grad=False``
    (e.g. DCAMA's frozen backbone) are not given to the optimizer at all,
    also without ``paramwise_cfg`` (where mmengine's constructor passes all
    of ``model.parameters()``): no state is kept for them, weight decay can
    never touch them and the optimizer's ``param_groups`` list only
    trainable tensors.

    Examples:
        >>> optim_wrapper = dict(
        ...     constructor='FewShotOptimWrapperConstructor',
        ...     optimizer=dict(type='SGD', lr=1e-3, momentum=0.9,
        ...                    nesterov=True, weight_decay=1e-4))
    """

    def _validate_cfg(self) -> None:
        """mmengine's checks, then: every key of ``paramwise_cfg`` (and of
        its ``custom_keys`` entries) is one mmengine reads, every key of
        ``optim_wrapper`` an argument of its wrapper type (a typo is named
        with the closest valid key instead of being ignored)."""
        super()._validate_cfg()
        owner = type(self).__name__
        check_keys(owner, 'optim_wrapper.paramwise_cfg key',
                   self.paramwise_cfg, PARAMWISE_KEYS)
        for name, entry in self.paramwise_cfg.get('custom_keys', {}).items():
            check_keys(owner,
                       f'optim_wrapper.paramwise_cfg.custom_keys.{name} key',
                       entry, CUSTOM_KEY_KEYS)
        wrapper = self.optim_wrapper_cfg.get('type', 'OptimWrapper')
        wrapper_cls = (OPTIM_WRAPPERS.get(wrapper)
                       if isinstance(wrapper, str) else wrapper)
        if isinstance(wrapper_cls, type):
            given = set(self.optim_wrapper_cfg) - {'type', '_scope_'}
            check_arguments(wrapper_cls, dict.fromkeys(given))

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer wrapper over the trainable parameters.

        Args:
            model (nn.Module): The model (a wrapper's ``module`` is used).

        Returns:
            OptimWrapper: The optimizer wrapper.

        Raises:
            ValueError: If the model has no trainable parameter.
        """
        if hasattr(model, 'module'):
            model = model.module
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = self.optimizer_cfg.copy()
        if not self.paramwise_cfg:
            params: List = [p for p in model.parameters() if p.requires_grad]
            num_params = len(params)
        else:
            groups: List[dict] = []
            self.add_params(groups, model)
            params = [
                group for group in groups
                if all(p.requires_grad for p in group['params'])
            ]
            num_params = sum(len(group['params']) for group in params)
        if num_params == 0:
            raise ValueError(
                f'{type(model).__name__} has no trainable parameter (all '
                'have requires_grad=False): nothing to optimize.')
        optimizer_cfg['params'] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(
            optim_wrapper_cfg, default_args=dict(optimizer=optimizer))
