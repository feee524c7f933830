"""The documentation's command sequences run as written.

``browse_dataset.py`` refuses an ``--output-dir`` that already holds
episode pictures (``argument --output-dir: Episode pictures already exist:
...``, exit status 2), so two documented commands that write into one
folder would stop at the second one.
"""
import glob
import os.path as osp
import shlex
from collections import defaultdict

from tests.test_tools.tiny_project import REPO_ROOT


def _commands(path):
    """The shell commands of a Markdown file's ``bash`` / ``shell`` code
    blocks, with their backslash continuations joined."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    block, inside = [], None
    for line in lines:
        if line.startswith('```'):
            if inside is None:
                inside = line[3:].strip() in ('bash', 'shell', 'sh')
                block = []
                continue
            if inside:
                for command in '\n'.join(block).replace(
                        '\\\n', ' ').splitlines():
                    command = command.split('#', 1)[0].strip()
                    if command:
                        yield command
            inside = None
        elif inside:
            block.append(line)


def _option(words, name):
    for k, word in enumerate(words):
        if word == name and k + 1 < len(words):
            return words[k + 1]
        if word.startswith(name + '='):
            return word[len(name) + 1:]
    return None


def test_documented_browse_commands_write_to_their_own_folders():
    docs = ['README.md'] + sorted(
        osp.relpath(p, REPO_ROOT)
        for p in glob.glob(osp.join(REPO_ROOT, 'docs', '*.md')))
    checked = 0
    for doc in docs:
        folders = defaultdict(list)
        for command in _commands(osp.join(REPO_ROOT, doc)):
            if 'browse_dataset.py' not in command:
                continue
            words = shlex.split(command)
            checked += 1
            folders[_option(words, '--output-dir')].append(command)
        shared = {k: v for k, v in folders.items() if len(v) > 1}
        assert not shared, (
            f'{doc}: these browse_dataset.py commands share an --output-dir '
            f'(the second is refused: pictures already exist): {shared}')
    assert checked >= 3  # README's and docs/toolbox.md's examples
