"""Shared fixtures."""
import shutil

import pytest
import torch

from mmseg_iccld.datasets.synthetic import BenchmarkPaths, generate_benchmark


@pytest.fixture(autouse=True, scope='session')
def single_thread():
    """One intra-op thread: the tests' tiny tensors gain nothing from more, and on a busy
    machine OpenMP threads only spin-wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def synthetic_benchmark(tmp_path_factory) -> BenchmarkPaths:
    """A small synthetic benchmark, generated and converted once per test session.

    12 source images (256x144, GTA5 layout), 8 target train and 4 target val images (256x128,
    Cityscapes layout), seed 0, default gap; train ids and class statistics written.

    Returns:
        ``BenchmarkPaths`` with ``root``, ``gta_root`` and ``cityscapes_root``.
    """
    root = tmp_path_factory.mktemp('synthetic_benchmark')
    return generate_benchmark(str(root), num_source=12, num_target_train=8, num_target_val=4,
                              seed=0)


@pytest.fixture
def bench(tmp_path, synthetic_benchmark):
    """A copy of the converted synthetic benchmark (GTA5 and Cityscapes layouts) under
    ``tmp_path / 'D'``, for a test to change."""
    root = tmp_path / 'D'
    shutil.copytree(synthetic_benchmark.root, root)
    return root


@pytest.fixture
def notes(monkeypatch):
    """The notes the datasets and converters log (each once per process), collected in a
    list."""
    from mmseg_iccld.datasets import validation
    logged = []
    monkeypatch.setattr(validation, '_NOTED', set())
    monkeypatch.setattr(validation, 'print_log', lambda msg, **kw: logged.append(msg))
    return logged
