"""A ``--launcher`` without the environment its launcher sets, found before anything is built.

mmengine's ``init_dist`` reads the process's rank and the rendezvous from variables that
torchrun (``--launcher pytorch``) or slurm's ``srun`` (``--launcher slurm``) set; started by
hand, ``python tools/train.py CONFIG --launcher pytorch`` ends in ``KeyError: 'RANK'`` from
deep inside the runner.
"""
import os

# the variables each launcher sets and mmengine's init_dist reads
LAUNCHER_VARIABLES = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
    'mpi': ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'),
}
# how each launcher is started in this repository
LAUNCHER_SCRIPTS = {
    'pytorch': 'tools/dist_train.sh CONFIG NUM_PROCESSES (or tools/dist_test.sh), which runs '
               'torchrun',
    'slurm': 'tools/slurm_train.sh (or tools/slurm_test.sh), which runs srun',
    'mpi': 'mpirun',
}


class LauncherError(ValueError):
    """``--launcher`` names a launcher that did not start this process."""


def check_launcher(launcher: str) -> None:
    """Raise unless the environment of ``launcher`` is present (nothing to check for 'none').

    Args:
        launcher: The tools' ``--launcher`` value.

    Raises:
        LauncherError: Naming the missing variables and the script that sets them.
    """
    missing = [key for key in LAUNCHER_VARIABLES.get(launcher, ()) if key not in os.environ]
    if missing:
        raise LauncherError(
            f'--launcher {launcher}: this process was not started by its launcher '
            f'({", ".join(missing)} not set); start distributed runs with '
            f'{LAUNCHER_SCRIPTS[launcher]}, or leave out --launcher to run in one process')
