"""Segment your own images with a DCAMA model, given annotated supports.

Example::

    python tools/infer.py configs/dcama_swinb_coco_fold0.py \\
        dcama_swinb_fold0.pth \\
        --support cat1.jpg:cat1_mask.png --support cat2.jpg:cat2_mask.png \\
        --query photos/ --out outputs/cats

writes, for every query ``photos/<file name>`` (e.g. ``photos/a.jpg``):

- ``outputs/cats/pred/<file name>.png`` (``a.jpg.png``): the binary mask at
  the photo's size (0 background, 255 foreground; usable as a support
  mask);
- ``outputs/cats/vis/<file name>.jpg`` (``a.jpg.jpg``): the photo with the
  mask tinted and the supports (their masks tinted) small beside it.

Result names keep the query's extension, so ``a.jpg`` and ``a.png`` of one
folder never share a result; two queries with the same file name (from two
folders) are refused before any work.

Masks: 0/1, 0/255 or soft 0..255 masks (object >= 128). For a label mask
(e.g. a PASCAL VOC palette PNG, or labels 0/1/2) say which label is the
object with ``--support-label 15`` (once: for every support; repeated: one
per ``--support``, in order). A label mask without it, or a mask without
any foreground, is refused with the values found (``docs/inputs.md``).
Paths must not contain ``:`` (the separator of ``--support``).

Several classes at once: name each support's class,
``--support cat:cat1.jpg:cat1.png --support dog:dog1.jpg:dog1.png``; then
``pred/<file name>.png`` is a label PNG with a palette (0 background, class n
in the n-th colour, classes numbered in the order first given) and the
overlay has a legend (see ``dcama_mm/apis/n_way.py`` for the rule). A pixel
is labelled where its best class's foreground probability exceeds
``--fg-threshold`` (default 0.5; N-way only, in [0, 1)).

Existing result files are never overwritten unless ``--force`` is given: the
tool stops before running the model and names them. An ``--out`` that
is a file (or holds a file ``pred`` / ``vis``) is refused before the model
is built (exit status 2). A query that cannot be
read is reported and skipped; the exit status is then 1.
"""
import argparse
import logging
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import DictAction
from mmengine.logging import print_log


def device_type(value: str) -> str:
    """``--device``: refused by argparse (with the reason) when it is not
    usable here, e.g. ``cuda`` on a machine without a GPU."""
    from dcama_mm.utils.device import device_argument
    return device_argument(value)


def parse_support(spec: str) -> Tuple[str, str]:
    """Split an ``IMAGE:MASK`` support argument.

    Args:
        spec (str): ``path/to/image.jpg:path/to/mask.png``.

    Returns:
        tuple[str, str]: The image path and the mask path.

    Raises:
        ValueError: When the mask part is missing.
    """
    img, sep, mask = spec.rpartition(':')
    if not sep or not img or not mask:
        raise ValueError(
            f'--support {spec!r} has no mask: write --support IMAGE:MASK '
            '(a binary mask, 0/1 or 0/255, of the size of the image).')
    return img, mask


def parse_supports(
        specs: Sequence[str],
        labels: Optional[Sequence[int]] = None) -> Dict[Optional[str], list]:
    """Group ``[CLASS:]IMAGE:MASK`` arguments by class.

    Args:
        specs (Sequence[str]): The ``--support`` values.
        labels (Sequence[int], optional): The ``--support-label`` values
            (see :func:`support_labels`). Defaults to None.

    Returns:
        dict: Class name (None when no spec names one) -> list of (image,
        mask, label or None), in the order first given.

    Raises:
        ValueError: A spec without a mask, named and unnamed specs mixed,
            or neither one label nor one per spec.
    """
    groups: Dict[Optional[str], list] = {}
    for spec, label in zip(specs, support_labels(labels, len(specs))):
        head, img_mask = spec.split(':', 1) if spec.count(':') >= 2 else (
            None, spec)
        groups.setdefault(head or None, []).append(
            parse_support(img_mask) + (label, ))
    if None in groups and len(groups) > 1:
        raise ValueError(
            'Give every --support as IMAGE:MASK (one class) or every one as '
            'CLASS:IMAGE:MASK (several classes), not both.')
    return groups


def support_labels(labels: Optional[Sequence[int]],
                   shots: int) -> List[Optional[int]]:
    """The ``--support-label`` values, one per ``--support`` (None each
    without the option).

    Raises:
        ValueError: Neither one label nor one per support.
    """
    if not labels:
        return [None] * shots
    if len(labels) == 1:
        return list(labels) * shots
    if len(labels) != shots:
        raise ValueError(
            f'--support-label was given {len(labels)} times for {shots} '
            '--support: give it once (the label of every mask) or once per '
            '--support, in their order.')
    return list(labels)


def check_fg_threshold_arg(parser: argparse.ArgumentParser,
                           opts: argparse.Namespace) -> None:
    """Refuse ``--fg-threshold`` the argparse way (exit status 2), before
    the model is built: outside ``[0, 1)``, or with one class (whose mask
    is the argmax of its two logits), as
    :func:`dcama_mm.apis.n_way.check_fg_threshold` refuses them."""
    if opts.fg_threshold is None:
        return
    try:
        n_way = None not in parse_supports(opts.support, opts.support_label)
    except ValueError:
        return  # main() reports the bad --support
    from dcama_mm.apis.n_way import check_fg_threshold
    try:
        check_fg_threshold(opts.fg_threshold, n_way=True)
    except ValueError as err:
        parser.error(f'argument --fg-threshold: {err}')
    if not n_way:
        try:
            check_fg_threshold(opts.fg_threshold, n_way=False)
        except ValueError:
            parser.error(
                f'argument --fg-threshold: {opts.fg_threshold} given with '
                'one class: it applies to several classes at once (every '
                '--support as CLASS:IMAGE:MASK). A one-class mask is the '
                'argmax of its two logits (foreground probability > 0.5); '
                'drop --fg-threshold.')


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Few-shot segmentation of your own images: segment the '
        'query images given K support images with masks.')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file (dcama_mm, or a reference DCAMA checkpoint '
        'converted by tools/model_converters/dcama2mmseg.py)')
    parser.add_argument(
        '--support',
        action='append',
        required=True,
        metavar='IMAGE:MASK',
        help='a support image and its mask (0/1, 0/255 or soft 0..255; a '
        'label mask needs --support-label); repeat for K > 1 shots; '
        'CLASS:IMAGE:MASK names its class, for several classes at once '
        '(paths must not contain ":")')
    parser.add_argument(
        '--support-label',
        action='append',
        type=int,
        default=None,
        metavar='LABEL',
        help='the object\'s label (pixel value) in label masks, e.g. 15 for '
        'a PASCAL VOC person: once for every --support, or once per '
        '--support in their order')
    parser.add_argument(
        '--query',
        action='append',
        required=True,
        metavar='PATH_OR_DIR',
        help='a query image or a folder of images (non-recursive); '
        'repeatable')
    parser.add_argument(
        '--out',
        required=True,
        help='output folder: masks go to OUT/pred, overlays to OUT/vis')
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite result files that already exist in --out')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='queries per forward pass')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs='+',
        default=None,
        metavar='SIZE',
        help='network input size, one value or H W, each at least 32 (the '
        'backbone\'s largest stride) (default: the config\'s test pipeline '
        'size, else 384)')
    parser.add_argument(
        '--no-overlay',
        action='store_true',
        help='write only the masks, no overlay pictures')
    parser.add_argument(
        '--device',
        default=None,
        type=device_type,
        help='device (default: cuda if available)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value')
    # as dcama_mm.models.utils.precision.add_amp_arguments (not imported
    # here: --help answers without loading torch)
    parser.add_argument(
        '--amp',
        action='store_true',
        help='run the model in mixed precision (autocast; '
        'docs/precision.md)')
    parser.add_argument(
        '--amp-dtype',
        choices=('auto', 'bfloat16', 'float16'),
        default='auto',
        help='the autocast dtype of --amp: auto (bfloat16 on the CPU, '
        'float16 on CUDA; the default), bfloat16 or float16')
    parser.add_argument(
        '--fg-threshold',
        type=float,
        default=None,
        metavar='P',
        help='several classes (CLASS:IMAGE:MASK) only: a pixel takes its '
        'best class where that class\'s foreground probability exceeds P, '
        'in [0, 1) (default 0.5), else it is background')
    opts = parser.parse_args(args)
    check_fg_threshold_arg(parser, opts)
    return opts


def main(args: Optional[Sequence[str]] = None) -> int:
    """Run the command line tool.

    Args:
        args (Sequence[str], optional): Arguments (without the program
            name). Defaults to None: ``sys.argv[1:]``.

    Returns:
        int: Exit status: 0 when every query was segmented, 1 when some
        could not be read, 2 for bad arguments or inputs.
    """
    opts = parse_args(args)
    # Imported here so that ``--help`` answers without loading torch.
    from dcama_mm.apis import FewShotInferencer
    from dcama_mm.models.utils.precision import amp_from_args
    from dcama_mm.utils.output_files import check_output_folder

    try:
        # before the model is built: --out must be (able to be) a folder
        check_output_folder(opts.out, '--out',
                            ('pred', '' if opts.no_overlay else 'vis'))
        groups = parse_supports(opts.support, opts.support_label)
        img_size = opts.img_size
        if img_size is not None and len(img_size) not in (1, 2):
            raise ValueError('--img-size takes one value or two (H W), got '
                             f'{len(img_size)}.')
        if img_size is not None:
            img_size = img_size[0] if len(img_size) == 1 else tuple(img_size)
        inferencer = FewShotInferencer(
            opts.config,
            opts.checkpoint,
            device=opts.device,
            img_size=img_size,
            cfg_options=opts.cfg_options,
            amp=amp_from_args(opts) or None)
        # class -> (images, masks, labels)
        sets = {
            name: tuple(list(column) for column in zip(*specs))
            for name, specs in groups.items()
        }
        if None in sets:
            support_kwargs = dict(
                support_imgs=sets[None][0],
                support_masks=sets[None][1],
                support_labels=sets[None][2])
        else:
            support_kwargs = dict(support_sets=sets)
            if opts.fg_threshold is not None:
                support_kwargs['fg_threshold'] = opts.fg_threshold
        result = inferencer(
            list(opts.query),
            **support_kwargs,
            batch_size=opts.batch_size,
            out_dir=opts.out,
            img_out_dir='' if opts.no_overlay else 'vis',
            pred_out_dir='pred',
            force=opts.force,
            show_progress=True,
            return_predictions=False)
    except (ValueError, FileNotFoundError, FileExistsError,
            NotADirectoryError) as err:
        print_log(f'Error: {err}', logger='current', level=logging.ERROR)
        return 2

    failed = result['failed']
    done = len(result['img_paths']) - len(failed)
    shots = sum(len(pairs) for pairs in groups.values())
    what = (f'{shots} support(s)' if None in groups else
            f'{len(groups)} classes ({", ".join(groups)}), {shots} supports')
    print_log(f'Segmented {done} queries with {what}.', logger='current')
    if failed:
        print_log(
            f'{len(failed)} queries could not be read and were skipped: '
            + ', '.join(failed),
            logger='current',
            level=logging.ERROR)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
