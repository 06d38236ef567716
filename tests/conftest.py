"""Shared fixtures."""
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
