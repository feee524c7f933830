"""The offline bundle (tools/misc/offline_bundle.sh, install_offline_bundle.sh,
build_mmcv.sh) and ``gpu_check.sh --bundle``: what can be checked without a
package index.

The bundle's pins against setup.cfg and the tested environment; the
installer on a real (tiny, locally built) wheel into a real target folder,
its reuse and its refusals; the bundle maker's refusals; the GPU check
reading its stack from a bundle, with its budget cut to what the install
left. Downloading the real bundle and building mmcv need an index and
minutes: docs/gpu.md records that run.
"""
import configparser
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from importlib.metadata import version

import pytest
from packaging.specifiers import SpecifierSet

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MISC = osp.join(ROOT, 'tools', 'misc')
PYVER = f'{sys.version_info[0]}.{sys.version_info[1]}'
PROBE = 'dcama_bundle_probe'


def _pins():
    pins = {}
    with open(osp.join(MISC, 'offline_requirements.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                name, _, pinned = line.partition('==')
                pins[name.lower()] = pinned
    return pins


def _script_variable(path, name):
    with open(path) as f:
        return re.search(rf'^{name}=(\S+)$', f.read(), re.M).group(1)


def test_pins_follow_setup_cfg_and_the_tested_stack():
    pins = _pins()
    assert all(pins.values()), pins  # every line pinned with ==
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(ROOT, 'setup.cfg'))
    required = {}
    for line in cfg['options']['install_requires'].split('\n'):
        match = re.match(r'([A-Za-z0-9_.-]+)\s*(.*)', line.strip())
        if match:
            required[match.group(1).lower()] = SpecifierSet(match.group(2))
    for name in ('mmengine', 'mmsegmentation', 'mmpretrain', 'pycocotools'):
        assert pins[name] in required[name], (name, pins[name])
    for name in ('mmengine', 'mmsegmentation', 'mmpretrain'):
        assert pins[name] == version(name), name  # what the tests run on
    mmcv = _script_variable(osp.join(MISC, 'offline_bundle.sh'),
                            'MMCV_VERSION')
    assert mmcv == _script_variable(
        osp.join(ROOT, 'tools', 'setup_env.sh'), 'MMCV_VERSION')
    assert mmcv in required['mmcv'] and mmcv == version('mmcv')
    assert 'torch' not in pins and 'torchvision' not in pins


@pytest.fixture(scope='module')
def probe_wheel(tmp_path_factory):
    """One real wheel, built here without an index."""
    src = tmp_path_factory.mktemp('probe_src')
    (src / PROBE).mkdir()
    (src / PROBE / '__init__.py').write_text('ANSWER = 42\n')
    (src / 'setup.py').write_text(
        'from setuptools import setup\n'
        f'setup(name="{PROBE}", version="1.0", packages=["{PROBE}"])\n')
    dist = tmp_path_factory.mktemp('probe_dist')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '--no-index', '-w', str(dist),
                    str(src)], check=True, capture_output=True)
    (wheel, ) = dist.iterdir()
    return wheel


def _bundle(tmp_path, wheel, python=PYVER):
    """A bundle of the probe wheel for CPython ``python``."""
    bundle = tmp_path / f'bundle{python}'
    bundle.mkdir()
    shutil.copy(wheel, bundle)
    (bundle / 'BUNDLE.txt').write_text(
        f'# dcama_mm offline bundle for CPython {python} '
        f'(cp{python.replace(".", "")}), x86_64 Linux,\n# made by a test\n'
        f'{wheel.name}\n')
    return bundle


def _install(*args, check=f'import {PROBE}'):
    env = dict(os.environ, PYTHON=sys.executable, DCAMA_MM_BUNDLE_CHECK=check)
    return subprocess.run(
        ['bash', osp.join(MISC, 'install_offline_bundle.sh'), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300)


def test_installer_installs_into_its_own_folder_and_reuses_it(tmp_path,
                                                              probe_wheel):
    bundle, site = _bundle(tmp_path, probe_wheel), tmp_path / 'site'
    proc = _install(bundle, site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith(
        f'export PYTHONPATH={site}:{ROOT}')
    assert (site / PROBE / '__init__.py').read_text() == 'ANSWER = 42\n'
    assert 'the stack imports' in proc.stderr
    # the interpreter's own site-packages are untouched
    assert subprocess.run([sys.executable, '-c', f'import {PROBE}'],
                          capture_output=True).returncode == 1
    again = _install(bundle, site)
    assert again.returncode == 0
    assert f'reusing the installation in {site}' in again.stderr


def test_installer_keeps_a_folder_it_did_not_make(tmp_path, probe_wheel):
    """pip --target --upgrade replaces folders such as bin/ in the target:
    an existing folder that is not an earlier installation is refused."""
    site = tmp_path / 'home'
    (site / 'bin').mkdir(parents=True)
    (site / 'bin' / 'my_tool').write_text('mine')
    proc = _install(_bundle(tmp_path, probe_wheel), site)
    assert proc.returncode == 2
    assert f"the install folder '{site}' already exists and was not made" \
        in proc.stderr
    assert sorted(p.name for p in site.rglob('*')) == ['bin', 'my_tool']


def test_installer_prints_a_line_the_shell_can_use(tmp_path, probe_wheel):
    """Relative folders (taken from where it runs), one with a space: the
    printed export line, run by the shell, makes the bundle importable."""
    bundle = _bundle(tmp_path, probe_wheel)
    env = dict(os.environ, PYTHON=sys.executable,
               DCAMA_MM_BUNDLE_CHECK=f'import {PROBE}')
    script = osp.join(MISC, 'install_offline_bundle.sh')
    proc = subprocess.run(
        ['bash', '-c', f'set -e; line="$(bash {script} {bundle.name} '
         f'"my site" 2>/dev/null | tail -n1)"; eval "$line"; '
         f'{sys.executable} -c "import {PROBE}; print({PROBE}.__file__)"'],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(
        tmp_path / 'my site' / PROBE / '__init__.py')


def test_installer_says_when_the_stack_does_not_import(tmp_path, probe_wheel):
    proc = _install(_bundle(tmp_path, probe_wheel), tmp_path / 'site',
                    check='import dcama_no_such_module')
    assert proc.returncode == 1
    assert 'the stack does not import' in proc.stderr
    assert "No module named 'dcama_no_such_module'" in proc.stderr


def _fake_mmcv_bundle(tmp_path, ops_body):
    """A bundle whose carried mmcv wheel fails to import (``ops_body`` is
    its ``mmcv/ops/__init__.py``), with a source archive that is no mmcv
    source, so the fallback build stops at once."""
    src = tmp_path / 'fake_mmcv'
    (src / 'mmcv' / 'ops').mkdir(parents=True)
    (src / 'mmcv' / '__init__.py').write_text('')
    (src / 'mmcv' / 'ops' / '__init__.py').write_text(ops_body)
    (src / 'setup.py').write_text(
        'from setuptools import setup\nsetup(name="mmcv", version="2.1.0", '
        'packages=["mmcv", "mmcv.ops"])\n')
    dist = tmp_path / 'fake_dist'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '--no-index', '-w', str(dist),
                    str(src)], check=True, capture_output=True)
    (wheel, ) = dist.iterdir()
    bundle = _bundle(tmp_path, wheel)
    (tmp_path / 'archive' / 'mmcv-2.1.0').mkdir(parents=True)
    subprocess.run(['tar', '-czf', str(bundle / 'mmcv-2.1.0.tar.gz'), '-C',
                    str(tmp_path / 'archive'), 'mmcv-2.1.0'], check=True)
    return bundle


@pytest.mark.parametrize('ops_body,why', [
    ("raise ImportError('mmcv/_ext.so: undefined symbol: _ZN3c104cuda')\n",
     'ImportError: mmcv/_ext.so: undefined symbol: _ZN3c104cuda'),
    # a damaged extension can kill Python while it maps the library
    ('import os, signal\nos.kill(os.getpid(), signal.SIGBUS)\n',
     "'import mmcv.ops' exits with status 135 and prints nothing"),
])
def test_installer_builds_mmcv_when_the_carried_wheel_fails(
        tmp_path, ops_body, why):
    proc = _install(_fake_mmcv_bundle(tmp_path, ops_body), tmp_path / 'site')
    assert ("the bundle's mmcv-2.1.0-py3-none-any.whl does not import with "
            f'this torch ({why}): building mmcv here instead') in proc.stderr
    # the build was tried, on the bundle's source archive
    assert 'holds no mmcv-<version>/setup.py' in proc.stderr
    assert proc.returncode == 2


def test_installer_refuses_what_is_not_a_bundle_for_this_python(
        tmp_path, probe_wheel):
    (tmp_path / 'empty').mkdir()
    proc = _install(tmp_path / 'empty', tmp_path / 'site')
    assert proc.returncode == 2
    assert 'is not a bundle of tools/misc/offline_bundle.sh' in proc.stderr
    other = '3.99' if PYVER != '3.99' else '3.98'
    proc = _install(_bundle(tmp_path, probe_wheel, python=other),
                    tmp_path / 'site')
    assert proc.returncode == 2
    assert (f'is for Python {other}, but {sys.executable} is Python {PYVER}'
            in proc.stderr)
    assert f'offline_bundle.sh --python-version {PYVER}' in proc.stderr
    assert not (tmp_path / 'site').exists()


@pytest.mark.parametrize('args,message', [
    (['--python-version', '312'], "--python-version '312': give major.minor"),
    (['--colour'], "unknown option '--colour'"),
    (['--mmcv-wheel', 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'],
     "is not an mmcv 2.1.0 wheel for CPython 3.12 on x86_64 Linux "
     "(mmcv-2.1.0-cp312-cp312-linux_x86_64.whl)"),
    (['--mmcv-wheel', '/nowhere/mmcv-2.1.0-cp312-cp312-linux_x86_64.whl'],
     "'/nowhere/mmcv-2.1.0-cp312-cp312-linux_x86_64.whl' does not exist"),
])
def test_bundle_maker_refuses_bad_options(args, message):
    proc = subprocess.run(['bash', osp.join(MISC, 'offline_bundle.sh'), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr


def test_bundle_maker_keeps_files_it_did_not_make(tmp_path):
    dest = tmp_path / 'dest'
    dest.mkdir()
    (dest / 'notes.txt').write_text('mine')
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(['bash', osp.join(MISC, 'offline_bundle.sh'),
                           '--dest', str(dest)], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2
    assert 'already holds files and no BUNDLE.txt' in proc.stderr
    (dest / 'BUNDLE.txt').write_text('# a bundle\nold.whl\n')
    (dest / 'old.whl').write_text('')
    proc = subprocess.run(['bash', osp.join(MISC, 'offline_bundle.sh'),
                           '--dest', str(dest)], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 2
    assert 'holds files that are not in its BUNDLE.txt ( notes.txt )' in \
        proc.stderr
    assert sorted(os.listdir(dest)) == ['BUNDLE.txt', 'notes.txt', 'old.whl']


def test_a_failed_download_keeps_the_earlier_bundle(tmp_path):
    """The new bundle is downloaded beside the old one and swapped in only
    when complete (here pip finds nothing: no index, an empty folder)."""
    dest = tmp_path / 'dest'
    dest.mkdir()
    (dest / 'BUNDLE.txt').write_text('# a bundle\nold.whl\n')
    (dest / 'old.whl').write_text('old')
    empty = tmp_path / 'no_packages'
    empty.mkdir()
    env = dict(os.environ, PYTHON=sys.executable, PIP_NO_INDEX='1',
               PIP_FIND_LINKS=str(empty))
    proc = subprocess.run(['bash', osp.join(MISC, 'offline_bundle.sh'),
                           '--dest', str(dest)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert sorted(os.listdir(tmp_path)) == ['dest', 'no_packages']
    assert (dest / 'old.whl').read_text() == 'old'
    assert (dest / 'BUNDLE.txt').read_text() == '# a bundle\nold.whl\n'


def test_build_mmcv_refuses_a_missing_source(tmp_path):
    proc = subprocess.run(
        ['bash', osp.join(MISC, 'build_mmcv.sh'), sys.executable,
         str(tmp_path / 'mmcv-2.1.0.tar.gz'), str(tmp_path / 'out')],
        capture_output=True, text=True)
    assert proc.returncode == 2
    assert "the mmcv source archive '" in proc.stderr
    assert 'pip download --no-deps' in proc.stderr


def test_gpu_check_reads_its_stack_from_a_bundle(tmp_path, probe_wheel):
    """--bundle installs first, the stages import from the bundle's folder,
    the report records it, and the budget is cut to fit 600 s in all.
    Folders are taken from where the script is started (here relative,
    one with a space)."""
    bundle = _bundle(tmp_path, probe_wheel)
    env = dict(os.environ, PYTHON=sys.executable,
               DCAMA_MM_BUNDLE_CHECK=f'import {PROBE}')
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'analysis_tools', 'gpu_check.sh'),
         f'--bundle={bundle.name}', '--site', 'site dir', '--budget=900',
         '--device', 'cpu', '--stages', 'environment', '--out-dir', 'out'],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / 'out' / 'gpu_check.json').read_text())
    assert report['bundle']['path'] == str(bundle)
    assert 0 <= report['bundle']['install_s'] < 60
    assert report['budget_s'] <= 570 - report['bundle']['install_s']
    assert report['stages']['environment']['status'] == 'ok'
    assert (tmp_path / 'site dir' / PROBE).is_dir()
    summary = (tmp_path / 'out' / 'gpu_check.txt').read_text()
    assert f'offline bundle {bundle}' in summary


def test_gpu_check_refuses_a_bad_budget(tmp_path):
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'analysis_tools', 'gpu_check.sh'),
         '--budget', 'soon', '--out-dir', str(tmp_path / 'out')],
        capture_output=True, text=True,
        env=dict(os.environ, PYTHON=sys.executable))
    assert proc.returncode == 2
    assert "--budget 'soon': give the seconds" in proc.stderr
    assert not (tmp_path / 'out').exists()


def test_gpu_check_stops_on_a_bad_bundle(tmp_path):
    (tmp_path / 'empty').mkdir()
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'analysis_tools', 'gpu_check.sh'),
         '--bundle', str(tmp_path / 'empty'), '--out-dir',
         str(tmp_path / 'out')], capture_output=True, text=True,
        env=dict(os.environ, PYTHON=sys.executable))
    assert proc.returncode == 2
    assert 'is not a bundle of tools/misc/offline_bundle.sh' in proc.stderr
    assert not (tmp_path / 'out').exists()
