"""Tests of the web page (tools/webui.py, dcama_mm.apis.webui): its
callback without a browser, and the served page in headless Chromium."""
import os
import os.path as osp
import shutil
import socket
import tempfile
import time
import urllib.request
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from dcama_mm.apis.few_shot_inferencer import FewShotInferencer
from dcama_mm.apis.webui import segment
from dcama_mm.apis.webui_examples import make_examples
from tests.test_apis.inferencer_helpers import (NET_SIZE, build_tiny_model,
                                                make_image, make_mask,
                                                write_episode_files,
                                                write_image)
from tests.test_tools.test_infer import load_tool

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'


@pytest.fixture(scope='module')
def tiny_model():
    return build_tiny_model()


def new_inferencer(model) -> FewShotInferencer:
    return FewShotInferencer(model, device='cpu', img_size=NET_SIZE)


def brush_layer(mask: np.ndarray) -> np.ndarray:
    """A brush stroke over a 0/1 mask as the editor gives it: RGBA, red
    and opaque on the mask, transparent elsewhere."""
    layer = np.zeros(mask.shape + (4, ), np.uint8)
    layer[mask > 0] = (255, 59, 48, 255)
    return layer


def editor_value(img_path: str, mask: np.ndarray = None) -> dict:
    """What the page's image editor gives: RGBA background, RGBA layers."""
    rgb = np.asarray(Image.open(img_path).convert('RGBA'))
    layers = [] if mask is None else [brush_layer(mask)]
    return dict(background=rgb, layers=layers, composite=None)


# ----------------------------------------------------------------------
# segment() without a browser
# ----------------------------------------------------------------------
def test_segment_one_way_mask_file_equals_inferencer(tiny_model, tmp_path):
    imgs, masks, queries = write_episode_files(str(tmp_path), 2,
                                               [(48, 40), (30, 64)])
    slots = [(editor_value(imgs[0]), masks[0]), (editor_value(imgs[1]), None)]
    slots[1][0]['layers'] = [
        brush_layer(np.asarray(Image.open(masks[1])) > 0)
    ]
    out = segment(new_inferencer(tiny_model), [('thing', slots)], queries,
                  str(tmp_path / 'out'))
    ref = new_inferencer(tiny_model)(queries, support_imgs=imgs,
                                     support_masks=masks)['predictions']
    assert out.message == 'Segmented 2 query image(s) with 2 support image(s).'
    assert [osp.basename(f) for f in out.mask_files] == [
        'query0.png.png', 'query1.png.png'
    ]
    for labels, file, expected in zip(out.labels, out.mask_files, ref):
        assert 0 < expected.sum() < expected.size  # a real comparison
        np.testing.assert_array_equal(labels, expected)
        np.testing.assert_array_equal(np.asarray(Image.open(file)),
                                      expected * 255)
        assert labels.shape == expected.shape
    assert out.overlays[0][0].shape[2] == 3
    assert out.overlays[0][1] == 'query0.png'
    # the label-map picture: class 1 in the visualizer's prediction colour
    picture = out.label_maps[1][0]
    np.testing.assert_array_equal(picture[ref[1] == 1][0], (255, 40, 40))
    assert not picture[ref[1] == 0].any()


def test_result_names_follow_the_query_file_names(tiny_model, tmp_path):
    """The rule of tools/infer.py: the query's file name, extension
    included, + .png, so a.jpg and a.png do not become a and a_2; a file
    name uploaded twice gets _2 before its extension."""
    imgs, masks, _ = write_episode_files(str(tmp_path), 1, [])
    rng = np.random.default_rng(0)
    queries = []
    for folder, name in (('x', 'a.jpg'), ('x', 'a.png'), ('y', 'a.png')):
        os.makedirs(tmp_path / folder, exist_ok=True)
        queries.append(write_image(str(tmp_path / folder / name),
                                   make_image(rng, 36, 44)))
    out = segment(new_inferencer(tiny_model),
                  [('x', [(editor_value(imgs[0]), masks[0])])], queries,
                  str(tmp_path / 'out'))
    assert [osp.basename(f) for f in out.mask_files] == [
        'a.jpg.png', 'a.png.png', 'a_2.png.png'
    ]
    assert [caption for _, caption in out.overlays] == [
        'a.jpg', 'a.png', 'a_2.png'
    ]


def test_segment_several_classes_equals_inferencer(tiny_model, tmp_path):
    imgs, masks, queries = write_episode_files(str(tmp_path), 3,
                                               [(50, 44), (36, 60)])
    rng = np.random.default_rng(5)
    other = write_image(str(tmp_path / 'other.png'), make_image(rng, 40, 52))
    other_mask = np.zeros((40, 52), np.uint8)
    other_mask[5:20, 10:45] = 1
    classes = [
        ('a', [(editor_value(imgs[0]), masks[0]),
               (editor_value(imgs[1]), masks[1]), (None, None)]),
        ('b', [(editor_value(other, other_mask), None)]),
        ('', [(editor_value(imgs[2]), masks[2])]),
    ]
    out = segment(new_inferencer(tiny_model), classes, queries,
                  str(tmp_path / 'out'))
    ref = new_inferencer(tiny_model)(
        queries,
        support_sets={
            'a': (imgs[:2], masks[:2]),
            'b': ([other], [other_mask]),
            'class 3': (imgs[2:], masks[2:]),
        })['predictions']
    assert out.message == ('Segmented 2 query image(s) with 3 classes (a, b, '
                           'class 3), 4 supports.')
    for labels, file, expected in zip(out.labels, out.mask_files, ref):
        assert expected['classes'] == ['a', 'b', 'class 3']
        assert len(np.unique(expected['label_map'])) >= 2
        np.testing.assert_array_equal(labels, expected['label_map'])
        png = Image.open(file)
        assert png.mode == 'P' and file.endswith('.png.png')
        np.testing.assert_array_equal(np.asarray(png), expected['label_map'])


def test_segment_rejects_bad_input_with_messages(tiny_model, tmp_path):
    imgs, masks, queries = write_episode_files(str(tmp_path), 1, [(40, 40)])
    text = tmp_path / 'notes.txt'
    text.write_text('not an image')
    inferencer = new_inferencer(tiny_model)
    good = [('x', [(editor_value(imgs[0]), masks[0])])]
    out_dir = str(tmp_path / 'out')
    cases = [
        (good, [str(text)], "query 'notes.txt' is not an image"),
        ([('x', [(editor_value(imgs[0]), str(text))])], queries,
         "mask file of the support 1 of 'x' 'notes.txt' is not an image"),
        ([('x', [(editor_value(imgs[0]), None)])], queries,
         "support 1 of 'x' has no mask: paint the object"),
        ([('x', [(None, masks[0])])], queries, 'has a mask file but no image'),
        ([('x', [(None, None)])], queries, "Class 'x' has no support image"),
        (good + good, queries, "Two classes are called 'x'"),
        (good, [], 'Upload at least one query image'),
        ([], queries, 'at least one class'),
    ]
    for classes, qs, message in cases:
        with pytest.raises(ValueError, match=message):
            segment(inferencer, classes, qs, out_dir)
    empty = tmp_path / 'empty.png'
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(empty)
    with pytest.raises(ValueError, match='mask of the support 1 .* empty'):
        segment(inferencer, [('x', [(editor_value(imgs[0]), str(empty))])],
                queries, out_dir)
    wrong = tmp_path / 'wrong.png'
    Image.fromarray(make_mask(20, 20)).save(wrong)
    with pytest.raises(ValueError, match='is 20x20 pixels but its image is '
                       '56x40'):
        segment(inferencer, [('x', [(editor_value(imgs[0]), str(wrong))])],
                queries, out_dir)
    six = [(editor_value(imgs[0]), masks[0])] * 6
    with pytest.raises(ValueError, match='6 support images; at most 5'):
        segment(inferencer, [('x', six)], queries, out_dir)
    assert not osp.exists(out_dir)  # nothing written for bad input


def label_mask_file(path, mask_file: str) -> str:
    """A label mask of the 0/255 mask ``mask_file``: the object 2, a
    second object 1 beside it, background 0."""
    mask = np.asarray(Image.open(mask_file)) > 0
    labels = np.where(mask, 2, 0).astype(np.uint8)
    labels[:4, :4][~mask[:4, :4]] = 1
    assert set(np.unique(labels)) == {0, 1, 2}
    Image.fromarray(labels).save(path)
    return str(path)


def test_segment_takes_the_label_of_label_masks(tiny_model, tmp_path):
    """A label mask needs the object's label in the class's label box; with
    it, the result is that of the 0/255 mask of the same object."""
    imgs, masks, queries = write_episode_files(str(tmp_path), 1, [(40, 48)])
    labels = label_mask_file(tmp_path / 'labels.png', masks[0])
    inferencer = new_inferencer(tiny_model)
    slot = [(editor_value(imgs[0]), labels)]
    out_dir = str(tmp_path / 'out')
    with pytest.raises(ValueError, match="label mask with the values 0, 1, "
                       "2: .* type the object's label in the class's 'Label "
                       "in its mask files' box"):
        segment(inferencer, [('x', slot)], queries, out_dir)
    for text, message in (('two', 'must be a whole number in 0..65535'),
                          ('1_0', 'must be a whole number in 0..65535'),
                          ('-1', 'must be a whole number in 0..65535'),
                          ('7', 'has no pixel of label 7; values found: '
                           '0, 1, 2')):
        with pytest.raises(ValueError, match=message):
            segment(inferencer, [('x', slot, text)], queries, out_dir)
    got = segment(inferencer, [('x', slot, ' 2 ')], queries, out_dir)
    binary = segment(new_inferencer(tiny_model),
                     [('x', [(editor_value(imgs[0]), masks[0])], '')],
                     queries, str(tmp_path / 'binary'))
    assert 0 < got.labels[0].sum() < got.labels[0].size
    np.testing.assert_array_equal(got.labels[0], binary.labels[0])


def test_blank_class_names_avoid_the_typed_ones():
    from dcama_mm.apis.webui import _class_names
    assert _class_names(['', None]) == ['class 1', 'class 2']
    assert _class_names(['class 2', '']) == ['class 2', 'class 3']
    assert _class_names(['', 'class 1', ' ']) == ['class 2', 'class 1',
                                                  'class 3']
    assert _class_names([' dog ', '']) == ['dog', 'class 2']


def test_make_examples(tmp_path):
    ex = make_examples(str(tmp_path))
    again = make_examples(str(tmp_path / 'again'))
    assert [name for name, _ in ex.classes] == ['person', 'airplane']
    assert [len(pairs) for _, pairs in ex.classes] == [2, 1]
    assert len(ex.queries) == 2
    for _, pairs in ex.classes:
        for img, mask in pairs:
            mask = np.asarray(Image.open(mask))
            assert np.asarray(Image.open(img)).shape == (96, 128, 3)
            assert set(np.unique(mask)) == {0, 255}
            assert 0.03 < (mask > 0).mean() < 0.5  # an object, not all
    np.testing.assert_array_equal(  # the same files for the same seed
        np.asarray(Image.open(ex.queries[1])),
        np.asarray(Image.open(again.queries[1])))


def test_tool_resolves_the_demo_checkpoint(tmp_path):
    tool = load_tool('tools/webui.py')
    with pytest.raises(FileNotFoundError, match='run `make demo` first'):
        tool.resolve_model(None, None, work_dir=str(tmp_path))
    for epoch, mtime in ((9, 100), (12, 300), (3, 200)):
        path = tmp_path / f'best_mIoU_epoch_{epoch}.pth'
        path.write_bytes(b'')
        os.utime(path, (mtime, mtime))
    config, ckpt = tool.resolve_model(None, None, work_dir=str(tmp_path))
    assert config == tool.DEMO_CONFIG and osp.isfile(config)
    assert osp.basename(ckpt) == 'best_mIoU_epoch_12.pth'
    with pytest.raises(ValueError, match='Give both CONFIG and CHECKPOINT'):
        tool.resolve_model(config, None)
    with pytest.raises(FileNotFoundError, match="checkpoint 'nope.pth' does"):
        tool.resolve_model(config, 'nope.pth')
    assert tool.parse_args([]).host == '127.0.0.1'


# ----------------------------------------------------------------------
# the served page in headless Chromium
# ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def browser() -> Iterator:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.skip(f'{path} is missing (Debian: apt-get install '
                        'chromium chromium-driver)')
    pytest.importorskip('gradio', reason='gradio is not installed')
    webdriver = pytest.importorskip(
        'selenium.webdriver', reason='selenium is not installed')
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix='dcama_webui_chromium_')
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ('--headless', '--no-sandbox', '--disable-gpu',
                '--disable-quic', '--no-first-run',
                '--disable-background-networking',
                '--disable-component-update', '--disable-sync',
                '--window-size=1400,2400', f'--user-data-dir={profile}'):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def serve(inferencer, examples=None):
    """Launch the page on a free port of 127.0.0.1 (a real Gradio server,
    in this process); returns the demo and its URL."""
    from dcama_mm.apis.webui import build_demo
    demo = build_demo(inferencer, examples)
    port = free_port()
    demo.launch(server_name='127.0.0.1', server_port=port,
                prevent_thread_lock=True, quiet=True)
    return demo, f'http://127.0.0.1:{port}/'


def wait_for(predicate, what: str, timeout: float = 120):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f'Timed out waiting for {what}.')


def upload(driver, elem_id: str, *paths: str) -> None:
    from selenium.webdriver.common.by import By
    field = driver.find_element(By.CSS_SELECTOR,
                                f'#{elem_id} input[type=file]')
    field.send_keys('\n'.join(paths))


def press_and_wait(driver) -> str:
    """Press Segment; the new status text once the run is over (the tests
    never expect the same status twice in a row)."""
    from selenium.webdriver.common.by import By
    before = driver.find_element(By.ID, 'status').text
    driver.find_element(By.ID, 'segment').click()

    def status() -> str:
        text = driver.find_element(By.ID, 'status').text
        done = text != before and text.startswith(('Segmented', 'Error'))
        return text if done else ''

    return wait_for(status, 'the result')


def downloaded_masks(driver, count: int):
    """The result files the page links to, fetched over HTTP."""
    from selenium.webdriver.common.by import By
    links = wait_for(
        lambda: (lambda ls: ls if len(ls) == count else None)
        (driver.find_elements(By.CSS_SELECTOR, '#mask-files a[download]')),
        'the mask links')
    files = []
    for link in links:
        with urllib.request.urlopen(link.get_attribute('href')) as resp:
            files.append((link.get_attribute('download'),
                          Image.open(resp).copy()))
    return files


def open_with_support(driver, url: str, img: str):
    """Open the page and upload ``img`` into the first support editor;
    returns the editor's canvas."""
    from selenium.webdriver.common.by import By
    driver.get(url)
    wait_for(lambda: driver.find_elements(By.ID, 'segment'), 'the page')
    upload(driver, 'class0-support0', img)
    return wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR,
                                     '#class0-support0 canvas'),
        'the support image in the editor')[0]


def one_mask_result(driver):
    """Press Segment for one class and one query: the mask file's name
    and picture."""
    status = press_and_wait(driver)
    assert status == 'Segmented 1 query image(s) with 1 support image(s).', \
        status
    (name, png), = downloaded_masks(driver, 1)
    return name, png


def assert_inferencer_mask(model, name: str, png, query: str, imgs, masks):
    """The page's mask file is the inferencer's 0/255 mask of ``query``."""
    expected = new_inferencer(model)(
        query, support_imgs=imgs, support_masks=masks)['predictions']
    assert name == 'query0.png.png'
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(np.asarray(png), expected * 255)


def test_page_segments_an_upload_like_the_inferencer(tiny_model, browser,
                                                     tmp_path):
    from selenium.webdriver.common.by import By
    imgs, masks, queries = write_episode_files(str(tmp_path), 1,
                                               [(52, 44)], seed=3)
    text = tmp_path / 'notes.txt'
    text.write_text('not an image')
    demo, url = serve(new_inferencer(tiny_model))
    try:
        open_with_support(browser, url, imgs[0])
        upload(browser, 'class0-mask0', masks[0])
        upload(browser, 'queries', str(text))
        wait_for(lambda: 'notes' in browser.find_element(By.ID,
                                                         'queries').text,
                 'the uploaded query')
        status = press_and_wait(browser)
        assert status.startswith("Error: The query 'notes.txt' is not an "
                                 'image'), status
        assert 'Traceback' not in browser.page_source
        browser.find_element(By.CSS_SELECTOR,
                             '#queries button[aria-label="Clear"]').click()
        upload(browser, 'queries', queries[0])
        wait_for(lambda: 'query0' in browser.find_element(By.ID,
                                                          'queries').text,
                 'the uploaded query')
        name, png = one_mask_result(browser)
    finally:
        demo.close()
    assert_inferencer_mask(tiny_model, name, png, queries[0], imgs, masks)


def test_page_opens_with_working_examples(tiny_model, browser, tmp_path):
    from selenium.webdriver.common.by import By
    examples = make_examples(str(tmp_path / 'examples'))
    demo, url = serve(new_inferencer(tiny_model), examples)
    try:
        browser.get(url)
        wait_for(
            lambda: len(browser.find_elements(
                By.CSS_SELECTOR, '[id^=class][id*=-support] canvas')) >= 3,
            'the example supports in the editors')
        status = press_and_wait(browser)
        files = downloaded_masks(browser, 2)
    finally:
        demo.close()
    expected = new_inferencer(tiny_model)(
        examples.queries,
        support_sets={
            name: ([i for i, _ in pairs], [m for _, m in pairs])
            for name, pairs in examples.classes
        })['predictions']
    assert status == ('Segmented 2 query image(s) with 2 classes (person, '
                      'airplane), 3 supports.')
    for (name, png), ref, query in zip(files, expected, examples.queries):
        assert name == osp.basename(query) + '.png'
        np.testing.assert_array_equal(np.asarray(png), ref['label_map'])


def test_page_takes_a_mask_painted_with_the_brush(tiny_model, browser,
                                                  tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    imgs, _, queries = write_episode_files(str(tmp_path), 1, [(44, 52)])
    demo, url = serve(new_inferencer(tiny_model))
    try:
        canvas = open_with_support(browser, url, imgs[0])
        upload(browser, 'queries', queries[0])
        wait_for(lambda: 'query0' in browser.find_element(By.ID,
                                                          'queries').text,
                 'the uploaded query')
        assert press_and_wait(browser).startswith(
            "Error: The support 1 of 'class 1' has no mask: paint")
        browser.find_element(By.CSS_SELECTOR,
                             '#class0-support0 button[aria-label="Brush"]'
                             ).click()
        ActionChains(browser).move_to_element(canvas).click_and_hold() \
            .move_by_offset(30, 10).move_by_offset(10, 30).release() \
            .perform()
        name, png = one_mask_result(browser)
    finally:
        demo.close()
    assert name == 'query0.png.png'
    assert set(np.unique(np.asarray(png))) <= {0, 255}


def test_page_takes_the_label_of_a_label_mask(tiny_model, browser,
                                              tmp_path):
    from selenium.webdriver.common.by import By
    imgs, masks, queries = write_episode_files(str(tmp_path), 1, [(40, 50)],
                                               seed=5)
    labels = label_mask_file(tmp_path / 'labels.png', masks[0])
    demo, url = serve(new_inferencer(tiny_model))
    try:
        open_with_support(browser, url, imgs[0])
        upload(browser, 'class0-mask0', labels)
        upload(browser, 'queries', queries[0])
        wait_for(lambda: 'query0' in browser.find_element(By.ID,
                                                          'queries').text,
                 'the uploaded query')
        status = press_and_wait(browser)
        assert "type the object's label in the class's 'Label in its mask " \
            "files' box" in status, status
        browser.find_element(By.CSS_SELECTOR,
                             '#class0-label textarea').send_keys('2')
        name, png = one_mask_result(browser)
    finally:
        demo.close()
    assert_inferencer_mask(tiny_model, name, png, queries[0], imgs, masks)
