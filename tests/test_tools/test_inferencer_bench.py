"""The inferencer benchmarks share one parser builder and header
(dcama_mm.analysis.inferencer_bench); their options and printout stay as
they were."""
from types import SimpleNamespace

from tests.test_tools.tiny_project import load_tool

#: Both tools' options, with their defaults.
COMMON = dict(config='c.py', device=None, threads=None, cfg_options=None,
              checkpoint=None, batch_size=4, img_size=None)


def test_both_tools_keep_their_options_and_defaults():
    timing = load_tool('analysis_tools/benchmark_inferencer.py')
    memory = load_tool('analysis_tools/benchmark_inferencer_memory.py')
    assert vars(timing.parse_args(['c.py'])) == dict(
        COMMON, num_queries=16, repeat=1, shots=[1, 5],
        query_size=[480, 640])
    assert vars(memory.parse_args(['c.py'])) == dict(
        COMMON, num_queries=500, min_size=200, max_size=4000,
        keep_predictions=False, no_overlay=False)
    opts = memory.parse_args(['c.py', '--checkpoint', 'w.pth', '--min-size',
                              '8', '--img-size', '64', '--no-overlay'])
    assert (opts.checkpoint, opts.min_size, opts.img_size,
            opts.no_overlay) == ('w.pth', 8, 64, True)


def test_report_header():
    import torch
    from dcama_mm.analysis.inferencer_bench import log_report
    opts = SimpleNamespace(config='c.py', checkpoint=None, num_queries=3,
                           batch_size=2)
    text = log_report(opts, SimpleNamespace(device='cpu'), '40x50', 'TABLE',
                      before=['network size 64x64'], after=['best of 1'])
    assert text == ('c.py (random weights) on cpu, '
                    f'{torch.get_num_threads()} threads, network size '
                    '64x64, 3 queries of 40x50, batch size 2, best of 1\n'
                    'TABLE')
