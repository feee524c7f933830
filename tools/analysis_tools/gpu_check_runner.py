# Copyright (c) dcama_mm contributors. All rights reserved.
"""How ``gpu_check.py`` runs its stages: each command in its own process,
logged, within the stage's timeout and what is left of the budget."""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import time
from typing import Dict, List, Optional

from gpu_check_workers import RESULT_PREFIX

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
WORKERS = osp.join(HERE, 'gpu_check_workers.py')


def stage_env(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a stage's command: ours, ``env`` on top, and the
    repository first on ``PYTHONPATH`` (keeping what was there, e.g. the
    folder of an offline bundle, see ``gpu_check.sh --bundle``)."""
    full_env = dict(os.environ, **(env or {}))
    full_env['PYTHONPATH'] = ROOT + (
        os.pathsep + full_env['PYTHONPATH']
        if full_env.get('PYTHONPATH') else '')
    return full_env


class Runner:
    """Runs the stages' commands within the budget and logs them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        #: the environment stage's result, once it has run
        self.environment: Dict[str, object] = {}
        self.deadline = time.monotonic() + args.budget
        self.logs = osp.join(args.out_dir, 'logs')
        os.makedirs(self.logs, exist_ok=True)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, cmd: List[str], timeout: float,
            env: Optional[Dict[str, str]] = None) -> Dict[str, object]:
        """Run ``cmd`` (output to ``logs/<name>.log``) for at most
        ``timeout`` seconds and what is left of the budget."""
        limit = min(timeout, self.left())
        log = osp.join(self.logs, f'{name}.log')
        record: Dict[str, object] = dict(command=cmd, log=log)
        if limit < 5:
            return dict(record, status='skipped',
                        error='no time left in the budget')
        full_env = stage_env(env)
        start = time.perf_counter()
        with open(log, 'w') as out:
            try:
                proc = subprocess.run(cmd, cwd=ROOT, env=full_env,
                                      stdout=out, stderr=subprocess.STDOUT,
                                      timeout=limit)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
        record['seconds'] = round(time.perf_counter() - start, 2)
        with open(log) as f:
            text = f.read()
        record['returncode'] = code
        if code is None:
            record.update(status='timeout',
                          error=f'stopped after {limit:.0f} s')
        elif code != 0:
            record.update(status='failed', error=_last_error(text))
        else:
            record['status'] = 'ok'
        record['output'] = text
        return record

    def worker(self, name: str, args: List[str],
               timeout: float) -> Dict[str, object]:
        """A :mod:`gpu_check_workers` worker; its result under ``result``."""
        record = self.run(name, [self.args.python, WORKERS] + args, timeout)
        text = record.pop('output', '')
        for line in text.splitlines():
            if line.startswith(RESULT_PREFIX):
                record['result'] = json.loads(line[len(RESULT_PREFIX):])
        if record['status'] == 'ok' and 'result' not in record:
            record.update(status='failed', error='no result line printed')
        return record


def _last_error(text: str) -> str:
    """The last line that looks like an error (else the last line)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r'(Error|error:|Exception)', line):
            return line.strip()[-500:]
    return lines[-1][-500:] if lines else 'no output'
