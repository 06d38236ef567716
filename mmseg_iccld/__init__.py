"""mmseg_iccld: unsupervised domain adaptation for MMSegmentation 1.x.

Importing this package registers every dataset, transform, model, hook, metric and optimizer
constructor of the project into mmseg's registries. Configs load it with
``custom_imports = dict(imports=['mmseg_iccld'], allow_failed_imports=False)``.
"""
from .version import __version__  # noqa: F401
from .engine import checkpoint as _checkpoint  # noqa: F401  (torch.load allowlist, first)
from . import datasets, engine, evaluation, models  # noqa: F401,E402
