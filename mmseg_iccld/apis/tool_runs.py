"""Running the tools from another tool (``uda_results.py``, ``checkpoint_trace.py``): one
subprocess per training or test, its output in a log, and a test's metrics read back (or
reused)."""
import json
import os
import os.path as osp
import subprocess
import sys

# the repository the package is installed from (an editable install, as scripts/install.sh
# makes): the tools and configs live beside the package
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run(command: list, log_path: str) -> None:
    """Run a tool from the repository root, its output going to ``log_path``; fail with the
    log's end."""
    with open(log_path, 'w') as log:
        result = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log_path) as log:
            tail = log.read()[-3000:]
        raise RuntimeError(f'{" ".join(command)} failed (log: {log_path}):\n{tail}')


def tested_metrics(root: str, config: str, checkpoint: str, test_dir: str, options=(),
                   fresh: bool = False) -> dict:
    """``metrics.json`` of ``tools/test.py`` on ``checkpoint`` into ``test_dir`` (absolute, or
    relative to ``root``), tested unless the folder holds it or ``fresh``.

    Args:
        root: The repository root (the tools run from there).
        config: The config to test with.
        checkpoint: The checkpoint.
        test_dir: The test's work dir.
        options: Further arguments of ``tools/test.py``.
        fresh: Test again even when the metrics exist.
    """
    folder = osp.join(root, test_dir)
    metrics_path = osp.join(folder, 'metrics.json')
    if fresh or not osp.isfile(metrics_path):
        os.makedirs(folder, exist_ok=True)
        run([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', test_dir,
             *options], osp.join(folder, 'test.out'))
    with open(metrics_path) as f:
        return json.load(f)
