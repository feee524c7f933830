# Copyright (c) dcama_mm contributors. All rights reserved.
"""Checks of options shared by dcama_mm's classes.

- :func:`check_choice`: a value among fixed choices.
- :func:`check_keys`: the keys of an options dict (e.g. the segmentor's
  ``test_cfg``) among the keys it reads; an unknown key is named with the
  closest valid one.
- :func:`strict_arguments`: a class decorator; every keyword argument the
  class (or a subclass) is given must be one it, or a base class it passes
  its ``**kwargs`` to, accepts. A typo in a config (``num_head=8``) raises
  :class:`UnknownOptionError` naming the key, the class and the closest
  valid argument, instead of being swallowed by a ``**kwargs`` or ending in
  Python's message about some base class's ``__init__``.
"""
import difflib
import functools
import inspect
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Type

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class UnknownOptionError(TypeError, ValueError):
    """An option (keyword argument or config key) nobody reads.

    Both a ``TypeError`` (what Python raises for an unexpected keyword
    argument) and a ``ValueError`` (what the tools report as a bad option).
    """


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


def closest(name: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate closest to ``name`` (difflib), or None."""
    matches = difflib.get_close_matches(
        str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_option_message(owner: str, what: str, unknown: Sequence[str],
                           valid: Iterable[str]) -> str:
    """``"{owner}: unknown {what} 'x' (did you mean 'y'?); ..."``.

    Args:
        owner (str): The class or tool, e.g. ``'DCAMAHead'``.
        what (str): What the names are, e.g. ``'argument'`` or
            ``'test_cfg key'``.
        unknown (Sequence[str]): The unknown names.
        valid (Iterable[str]): The valid names.

    Returns:
        str: One sentence per unknown name, then the valid names.
    """
    valid = sorted(set(valid))
    parts = []
    for key in unknown:
        match = closest(key, valid)
        hint = f" (did you mean '{match}'?)" if match else ''
        parts.append(f"unknown {what} '{key}'{hint}")
    listed = ', '.join(valid) if valid else 'none'
    return f'{owner}: {"; ".join(parts)}. Valid: {listed}.'


def check_keys(owner: str,
               what: str,
               keys: Iterable[str],
               valid: Iterable[str],
               note: str = '') -> None:
    """Raise :class:`UnknownOptionError` if a key is not a valid one.

    Args:
        owner (str): Who reads the keys, e.g. ``'FewShotSegmentor'``.
        what (str): What they are, e.g. ``'test_cfg key'``.
        keys (Iterable[str]): The keys given.
        valid (Iterable[str]): The keys read.
        note (str): A sentence added to the message. Defaults to ''.

    Raises:
        UnknownOptionError: Naming each unknown key and its closest valid
        key.
    """
    valid = tuple(valid)
    unknown = [key for key in keys if key not in valid]
    if unknown:
        message = unknown_option_message(owner, what, unknown, valid)
        raise UnknownOptionError(f'{message} {note}'.rstrip())


@functools.lru_cache(maxsize=None)
def accepted_arguments(cls: Type) -> Tuple[str, ...]:
    """The keyword arguments ``cls(...)`` accepts.

    The named parameters of ``cls.__init__`` and, while an ``__init__``
    takes ``**kwargs`` (passed on to its base class), those of the next
    ``__init__`` along the MRO. A ``**kwargs`` that reaches ``object`` or
    ``torch.nn.Module`` adds nothing (they take no keyword arguments).

    Args:
        cls (type): The class.

    Returns:
        tuple[str]: The argument names.
    """
    import torch.nn as nn
    names: Dict[str, None] = {}
    for klass in cls.__mro__:
        if klass in (object, nn.Module) or '__init__' not in vars(klass):
            continue
        params = inspect.signature(vars(klass)['__init__']).parameters
        for param in list(params.values())[1:]:  # not self
            if param.kind not in _VARIADIC:
                names.setdefault(param.name)
        if not any(p.kind == inspect.Parameter.VAR_KEYWORD
                   for p in params.values()):
            break
    return tuple(names)


def check_arguments(cls: Type,
                    kwargs: Dict[str, Any],
                    ignore: Iterable[str] = ()) -> None:
    """Raise :class:`UnknownOptionError` for an argument ``cls`` does not
    accept (:func:`accepted_arguments`); names in ``ignore`` are left to the
    class's own checks."""
    ignore = set(ignore)
    valid = accepted_arguments(cls)
    unknown = [k for k in kwargs if k not in valid and k not in ignore]
    if unknown:
        raise UnknownOptionError(
            unknown_option_message(cls.__name__, 'argument', unknown, valid))


def strict_arguments(cls: Optional[Type] = None,
                     *,
                     ignore: Iterable[str] = ()) -> Any:
    """Class decorator: refuse keyword arguments nobody reads.

    Wraps ``cls.__init__`` so that the keyword arguments are checked with
    :func:`check_arguments` against the class actually built
    (``type(self)``, so subclasses are checked too, with their own
    arguments) before anything is done. Use as ``@strict_arguments`` or
    ``@strict_arguments(ignore=('old_option', ))`` (names the class refuses
    itself with a more specific message).

    Args:
        cls (type, optional): The class (when used without parentheses).
        ignore (Iterable[str]): Names not checked here.

    Returns:
        The class, or a decorator.
    """
    ignored = tuple(ignore)

    def decorate(klass: Type) -> Type:
        init = klass.__init__  # its own or the inherited one

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            check_arguments(type(self), kwargs, ignored)
            init(self, *args, **kwargs)

        klass.__init__ = __init__
        return klass

    return decorate if cls is None else decorate(cls)
