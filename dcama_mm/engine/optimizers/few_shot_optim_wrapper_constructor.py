# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import (OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                            OPTIMIZERS)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
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
