# Copyright (c) dcama_mm contributors. All rights reserved.
"""A web page to try few-shot segmentation (``tools/webui.py``).

:func:`build_demo` lays out a Gradio page: for each class (one to
:data:`MAX_CLASSES`) a name and 1 to :data:`MAX_SHOTS` support images,
each with its mask painted with the brush on the image or uploaded as a
file, and the object's label in its mask files when they are label masks;
then the query images, a button, and the results: the overlays, the
label maps and the masks as PNG files. :func:`segment` is what the button
runs, a plain function of the inputs that tests call directly; the
segmentation itself is :class:`~dcama_mm.apis.FewShotInferencer`'s (one
class: its 1-way call; several: its ``support_sets`` call, labels by the
rule of :mod:`dcama_mm.apis.n_way`).

Masks: a painted mask is every pixel that the brush touched (any alpha
> 0 on the editor's layers); an uploaded mask file goes through the
repository's binary-mask rule,
:func:`~dcama_mm.datasets.transforms.binary_mask.to_binary_mask`; an
uploaded file wins over painting. A label mask (labels 0, 1, 2, ..., or a
palette PNG of several objects) needs the object's label in the class's
label box; without one it is refused with a message that says so.

Gradio is an optional dependency, imported only by :func:`build_demo`.
"""
import logging
import os
import os.path as osp
import tempfile
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmengine.logging import print_log

from .n_way import write_label_png
from .webui_examples import WebUIExamples
from .webui_inputs import (SupportInput, parse_label, read_image_file,
                           support_pair)

#: Most classes and support images per class on the page.
MAX_CLASSES = 3
MAX_SHOTS = 5

#: One class: its name, its support slots (see :data:`SupportInput`) and,
#: optionally, the object's label in its uploaded label masks (the label
#: box's text or an int; blank or None: 0/255 masks).
ClassInput = Union[Tuple[str, Sequence[SupportInput]],
                   Tuple[str, Sequence[SupportInput], Union[None, str, int]]]


class SegmentOutput(NamedTuple):
    """What :func:`segment` gives the page.

    Attributes:
        overlays (list): Per query, ``(RGB uint8 picture, caption)``.
        label_maps (list): Per query, ``(RGB uint8 colour label map,
            caption)``: background black, class ``n`` in its colour.
        mask_files (list[str]): Per query, the PNG written, named by
            :func:`page_result_names` + ``.png``: 0/255 with one class, an
            indexed label PNG (index = label) with several.
        labels (list[np.ndarray]): Per query, the ``uint8`` label map (0
            background, ``n`` the n-th class).
        message (str): A summary for the page.
    """
    overlays: List[Tuple[np.ndarray, str]]
    label_maps: List[Tuple[np.ndarray, str]]
    mask_files: List[str]
    labels: List[np.ndarray]
    message: str


def _colour(labels: np.ndarray, palette: Sequence[Tuple[int, int, int]]
            ) -> np.ndarray:
    """A label map in colours (RGB; 0 black, class ``n`` palette[n-1])."""
    lut = np.zeros((256, 3), np.uint8)
    lut[1:len(palette) + 1] = palette
    return lut[labels]


def page_result_names(paths: Sequence[str]) -> List[str]:
    """The name of each query's result: its file name, extension included,
    as ``tools/infer.py`` names results (``a.jpg`` and ``a.png`` stay
    apart); a file name uploaded again gets ``_2``, ``_3``, ... before its
    extension, in upload order (``a_2.png``; the page, unlike the tool,
    cannot ask for separate folders). The mask file is ``<name>.png``."""
    names: List[str] = []
    for path in paths:
        base = osp.basename(path) or 'query'
        root, ext = osp.splitext(base)
        name, n = base, 1
        while name in names:
            n += 1
            name = f'{root}_{n}{ext}'
        names.append(name)
    return names


def _class_names(given: Sequence[Optional[str]]) -> List[str]:
    """The classes' names: as typed (stripped); a blank one becomes
    ``class <n>`` (its position), or the next such name that no other class
    is called."""
    typed = [(name or '').strip() for name in given]
    names: List[str] = []
    for c, name in enumerate(typed):
        n = c + 1
        while not name:
            candidate = f'class {n}'
            if candidate not in typed and candidate not in names:
                name = candidate
            n += 1
        names.append(name)
    return names


def segment(inferencer, classes: Sequence[ClassInput],
            queries: Sequence[str], out_dir: str) -> SegmentOutput:
    """Segment the query files given the classes' support slots.

    Args:
        inferencer (FewShotInferencer): The model.
        classes (Sequence[tuple]): Per class, ``(name, slots)`` or
            ``(name, slots, label)``; a slot is ``(editor value, mask
            file)`` (see :data:`SupportInput`); empty slots are skipped; an
            empty name becomes ``class <n>`` (a name no other class has);
            ``label`` is the object's label in the class's uploaded label
            masks (see :func:`~dcama_mm.apis.webui_inputs.parse_label`).
        queries (Sequence[str]): Query image files.
        out_dir (str): Folder for the mask PNGs (created).

    Returns:
        SegmentOutput: Pictures, mask files and label maps.

    Raises:
        ValueError: Bad input (no class, a class without supports, more
            than :data:`MAX_SHOTS`, repeated class names, no query, a file
            that is not an image, a bad mask or label), with a message for
            the page.
    """
    if not classes:
        raise ValueError('Give at least one class with support images.')
    sets = {}
    names = _class_names([c[0] for c in classes])
    for c, (_, slots, *label) in enumerate(classes):
        name = names[c]
        if name in sets:
            raise ValueError(f'Two classes are called {name!r}: give each '
                             'class its own name.')
        label = parse_label(label[0] if label else None, f'class {name!r}')
        pairs = [
            pair for k, (value, mask_file) in enumerate(slots)
            if (pair := support_pair(value, mask_file,
                                     f'support {k + 1} of {name!r}', label))
        ]
        if not pairs:
            raise ValueError(f'Class {name!r} has no support image: upload '
                             'one and paint or upload its mask.')
        if len(pairs) > MAX_SHOTS:
            raise ValueError(f'Class {name!r} has {len(pairs)} support '
                             f'images; at most {MAX_SHOTS} are taken.')
        sets[name] = ([img for img, _ in pairs], [m for _, m in pairs])
    queries = [q for q in queries or [] if q]
    if not queries:
        raise ValueError('Upload at least one query image to segment.')
    imgs = [read_image_file(q, 'query') for q in queries]
    if len(sets) == 1:
        (support_imgs, support_masks), = sets.values()
        result = inferencer(imgs, support_imgs=support_imgs,
                            support_masks=support_masks, return_vis=True,
                            return_probs=True)
        labels = [p['sem_seg'] for p in result['predictions']]
    else:
        result = inferencer(imgs, support_sets=sets, return_vis=True)
        labels = [p['label_map'] for p in result['predictions']]
    palette = inferencer.visualizer.class_colors(len(sets))
    os.makedirs(out_dir, exist_ok=True)
    overlays, label_maps, files = [], [], []
    for name, label, vis in zip(page_result_names(queries), labels,
                                result['visualization']):
        overlays.append((mmcv.bgr2rgb(vis), name))
        label_maps.append((_colour(label, palette), name))
        path = osp.join(out_dir, f'{name}.png')
        if len(sets) == 1:
            mmcv.imwrite(label * np.uint8(255), path)
        else:
            write_label_png(path, label, palette)
        files.append(path)
    shots = sum(len(imgs) for imgs, _ in sets.values())
    what = (f'{shots} support image(s)' if len(sets) == 1 else
            f'{len(sets)} classes ({", ".join(sets)}), {shots} supports')
    message = f'Segmented {len(queries)} query image(s) with {what}.'
    return SegmentOutput(overlays, label_maps, files, labels, message)


def _import_gradio():
    try:
        import gradio
    except ImportError as err:
        raise ImportError(
            'The web page needs Gradio, an optional dependency: '
            '`pip install "gradio>=6,<7"`.') from err
    return gradio


def _intro(examples: Optional[WebUIExamples]) -> str:
    text = ('## DCAMA few-shot segmentation\n'
            'Show each class by 1-5 **support images**: upload an image '
            'into an editor and paint the object with the brush, or upload '
            'its mask file (a PNG, 0/255 or 0/1; for a label mask, type the '
            "object's label in the class's label box) below it. Add classes "
            'with '
            'the *Classes* slider. Then upload **query images** and press '
            '**Segment**.')
    if examples is not None:
        text += ('\n\nThe page opens with a synthetic example (its masks '
                 'as files): classes that the demo model was never trained '
                 'on.')
    return text


def build_demo(inferencer, examples: Optional[WebUIExamples] = None,
               out_root: Optional[str] = None):
    """The Gradio page around ``inferencer``.

    Args:
        inferencer (FewShotInferencer): The model; calls are run one at a
            time (it keeps the encoded supports between calls).
        examples (WebUIExamples, optional): What the page opens with
            (see :func:`~dcama_mm.apis.webui_examples.make_examples`).
            Defaults to None: an empty page.
        out_root (str, optional): Folder under which each press of the
            button writes its masks. Defaults to None: a temporary folder.

    Returns:
        gradio.Blocks: The page; ``.launch()`` serves it.

    Raises:
        ImportError: Gradio is not installed.
    """
    gr = _import_gradio()
    example_classes = examples.classes if examples else [('', [])]
    if len(example_classes) > MAX_CLASSES:
        raise ValueError(f'The page holds at most {MAX_CLASSES} classes, '
                         f'the examples have {len(example_classes)}.')
    out_root = out_root or tempfile.mkdtemp(prefix='dcama_webui_')
    with gr.Blocks(title='DCAMA few-shot segmentation') as demo:
        gr.Markdown(_intro(examples))
        num_classes = gr.Slider(1, MAX_CLASSES, value=len(example_classes),
                                step=1, label='Classes',
                                elem_id='num-classes')
        groups, class_inputs = [], []
        for c in range(MAX_CLASSES):
            name, pairs = (example_classes[c] if c < len(example_classes)
                           else ('', []))
            with gr.Column(visible=c < len(example_classes),
                           variant='panel') as group:
                with gr.Row():
                    name_box = gr.Textbox(name, label=f'Class {c + 1} name',
                                          placeholder=f'class {c + 1}',
                                          elem_id=f'class{c}-name')
                    shots = gr.Slider(1, MAX_SHOTS, value=max(len(pairs), 1),
                                      step=1, label='Support images',
                                      elem_id=f'class{c}-shots')
                    label_box = gr.Textbox(
                        '', label='Label in its mask files',
                        placeholder='empty: 0/255 masks',
                        info='for label masks (0, 1, 2, ...): the '
                        "object's value",
                        elem_id=f'class{c}-label')
                columns, slots = [], []
                with gr.Row():
                    for k in range(MAX_SHOTS):
                        img, mask = pairs[k] if k < len(pairs) else (None,
                                                                     None)
                        with gr.Column(visible=k < max(len(pairs), 1),
                                       min_width=220) as column:
                            editor = gr.ImageEditor(
                                img, type='numpy', image_mode='RGBA',
                                format='png', sources=('upload', 'clipboard'),
                                transforms=(),
                                layers=gr.LayerOptions(
                                    allow_additional_layers=False),
                                brush=gr.Brush(colors=['#ff3b30'],
                                               color_mode='fixed'),
                                label=f'Support {k + 1}: paint the object',
                                elem_id=f'class{c}-support{k}')
                            mask_file = gr.File(
                                mask, label='or upload its mask file',
                                height=120,
                                elem_id=f'class{c}-mask{k}')
                        columns.append(column)
                        slots += [editor, mask_file]
                shots.change(
                    lambda n: [gr.update(visible=k < n)
                               for k in range(MAX_SHOTS)], shots, columns)
            groups.append(group)
            class_inputs += [name_box, shots, label_box] + slots
        num_classes.change(
            lambda n: [gr.update(visible=c < n) for c in range(MAX_CLASSES)],
            num_classes, groups)
        query_files = gr.File(examples.queries if examples else None,
                              file_count='multiple', label='Query images',
                              elem_id='queries')
        button = gr.Button('Segment', variant='primary', elem_id='segment')
        status = gr.Markdown('Press **Segment** to run the model.',
                             elem_id='status')
        with gr.Row():
            overlays = gr.Gallery(label='Overlays', format='png', height=300,
                                  elem_id='overlays')
            label_maps = gr.Gallery(label='Label maps', format='png',
                                    height=300, elem_id='label-maps')
        mask_files = gr.File(label='Masks (PNG)', file_count='multiple',
                             interactive=False, elem_id='mask-files')

        def run(count: int, *values: Any):
            *class_values, queries = values
            per_class = 3 + 2 * MAX_SHOTS
            classes = []
            for c in range(int(count)):
                name, shots, label, *slots = class_values[
                    c * per_class:(c + 1) * per_class]
                slots = slots[:2 * int(shots)]
                classes.append(
                    (name, list(zip(slots[::2], slots[1::2])), label))
            try:
                out = segment(inferencer, classes, queries or [],
                              tempfile.mkdtemp(dir=out_root))
            except (ValueError, FileNotFoundError) as err:
                gr.Warning(str(err))
                return f'**Error:** {err}', [], [], None
            except Exception as err:  # never a traceback on the page
                print_log(f'Segmentation failed: {err!r}', logger='current',
                          level=logging.ERROR)
                gr.Warning(f'Segmentation failed: {err}')
                return f'**Error:** segmentation failed: {err}', [], [], None
            return out.message, out.overlays, out.label_maps, out.mask_files

        # hidden slots are passed too: run() reads only the shown ones
        button.click(run, [num_classes] + class_inputs + [query_files],
                     [status, overlays, label_maps, mask_files],
                     concurrency_limit=1)
    return demo
