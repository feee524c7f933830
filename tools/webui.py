"""A web page to try few-shot segmentation with a DCAMA model.

Example::

    python tools/webui.py configs/dcama_swinb_coco_fold0.py dcama.pth \\
        --port 7860

serves the page on http://127.0.0.1:7860 (``--host 0.0.0.0`` to reach it
from other machines). On the page: name each class, give it 1-5 support
images with their masks (painted with the brush, or uploaded as files),
upload query images and press *Segment*: the page shows the overlays and
label maps, and offers the masks as PNG files. Without CONFIG and
CHECKPOINT it serves the demo model of ``make demo``
(``configs/dcama_synthetic_demo.py`` and the newest
``work_dirs/dcama_synthetic_demo/best_mIoU_epoch_*.pth``). The page opens
with a small synthetic example, generated into ``--examples-dir``.

Needs Gradio (``pip install "gradio>=6,<7"``).
"""
import argparse
import glob
import logging
import os.path as osp
import re
import sys
from typing import Optional, Sequence, Tuple

from mmengine.logging import print_log


def device_type(value: str) -> str:
    """``--device``: refused by argparse (with the reason) when it is not
    usable here, e.g. ``cuda`` on a machine without a GPU."""
    from dcama_mm.utils.device import device_argument
    return device_argument(value)


REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'dcama_synthetic_demo.py')
DEMO_WORK_DIR = osp.join(REPO, 'work_dirs', 'dcama_synthetic_demo')


def resolve_model(config: Optional[str], checkpoint: Optional[str],
                  work_dir: str = DEMO_WORK_DIR) -> Tuple[str, str]:
    """The config and checkpoint to serve: the ones given, else the demo's.

    Args:
        config (str, optional): Config file.
        checkpoint (str, optional): Checkpoint file.
        work_dir (str): Where ``make demo`` writes its checkpoints.
            Defaults to ``work_dirs/dcama_synthetic_demo`` of the repository.

    Returns:
        tuple[str, str]: Config and checkpoint paths.

    Raises:
        ValueError: Only one of the two given.
        FileNotFoundError: A given file, or the demo checkpoint, is missing.
    """
    if (config is None) != (checkpoint is None):
        raise ValueError('Give both CONFIG and CHECKPOINT, or neither to '
                         'serve the demo model of `make demo`.')
    if config is None:
        config = DEMO_CONFIG
        found = glob.glob(osp.join(work_dir, 'best_mIoU_epoch_*.pth'))
        if not found:
            raise FileNotFoundError(
                f'No demo checkpoint (best_mIoU_epoch_*.pth) in {work_dir}: '
                'run `make demo` first, or give CONFIG and CHECKPOINT.')

        def epoch(path: str) -> int:
            return int(re.findall(r'\d+', osp.basename(path))[-1])

        checkpoint = max(found, key=lambda p: (osp.getmtime(p), epoch(p)))
    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'The {what} {path!r} does not exist.')
    return config, checkpoint


def parse_args(args: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Serve a web page to try few-shot segmentation.')
    parser.add_argument(
        'config', nargs='?', help='model config file (default: the demo)')
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint file (default: the newest '
        'best checkpoint of `make demo`)')
    parser.add_argument(
        '--host', default='127.0.0.1',
        help='address to listen on (0.0.0.0: every interface)')
    parser.add_argument('--port', type=int, default=7860, help='port')
    parser.add_argument(
        '--device',
        default=None,
        type=device_type,
        help='device (default: cuda if available)')
    parser.add_argument(
        '--examples-dir',
        default=osp.join(osp.expanduser('~'), '.cache', 'dcama_mm',
                         'webui_examples'),
        help='folder for the generated example images')
    return parser.parse_args(args)


def main(args: Optional[Sequence[str]] = None) -> int:
    """Run the server (until interrupted).

    Returns:
        int: Exit status: 0 after serving, 2 for bad arguments or inputs.
    """
    opts = parse_args(args)
    try:
        config, checkpoint = resolve_model(opts.config, opts.checkpoint)
        # Imported here so that --help and bad arguments answer quickly.
        from dcama_mm.apis.few_shot_inferencer import FewShotInferencer
        from dcama_mm.apis.webui import build_demo
        from dcama_mm.apis.webui_examples import make_examples
        inferencer = FewShotInferencer(config, checkpoint, device=opts.device)
        examples = make_examples(opts.examples_dir)
        demo = build_demo(inferencer, examples)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print_log(f'Error: {err}', logger='current', level=logging.ERROR)
        return 2
    print_log(f'Serving {osp.basename(checkpoint)} on '
              f'http://{opts.host}:{opts.port}', logger='current')
    demo.launch(server_name=opts.host, server_port=opts.port,
                allowed_paths=[opts.examples_dir])
    return 0


if __name__ == '__main__':
    sys.exit(main())
