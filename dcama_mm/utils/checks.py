# Copyright (c) dcama_mm contributors. All rights reserved.
from typing import Any, Iterable


def check_choice(owner: str, name: str, value: Any,
                 choices: Iterable[Any]) -> None:
    """Raise a ValueError naming the option unless ``value`` is a choice.

    Args:
        owner (str): Who takes the option, e.g. ``'BlockFeatureSwin'``.
        name (str): The option, e.g. ``'activation'``.
        value: The value given.
        choices (Iterable): The accepted values.

    Raises:
        ValueError: ``"{owner}: {name} must be one of {choices}, got
        {value!r}."``
    """
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(
            f'{owner}: {name} must be one of {choices}, got {value!r}.')
