"""Random generator states in checkpoints, so that a resumed run repeats the interrupted one.

mmengine's resume restores the model, the optimizers, the parameter schedulers and the
message hub, and replays the data sampler: ``IterBasedTrainLoop`` draws and discards as many
batches as were trained before. It does not restore the random generators, so after resume
every draw of a training step (ClassMix classes, color jitter, blur, dropout, drop path, the
diffusion noise and timesteps) differs from the uninterrupted run; with ``num_workers=0`` the
data pipeline's draws (rare class sampling, the target pick, random crop and flip) do too,
because they use the main process's numpy generator.

``RNGStateHook`` saves the states of python's, numpy's and torch's global generators (and
the current CUDA device's) in every checkpoint, one entry per rank, and puts them back when a
run resumes, after the loop has skipped the batches it trained before: at that point the
generators are exactly where the interrupted run had them before loading its next batch.
Dataloader workers need nothing: mmengine seeds each worker from the seed, its id and the
rank, and the replayed batches move the worker generators as the interrupted run did.

Validation does not move the training generators either (their states are put back after
each validation; creating the validation dataloader's iterator alone draws from torch's),
so a run resumed from a checkpoint written just before a validation continues like the
original, and the validation interval does not change the training's random draws.
"""
import logging
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import HOOKS

CHECKPOINT_KEY = 'rng_state'


def get_rng_states() -> dict:
    """The states of python's, numpy's and torch's global generators.

    Only types that ``torch.load(weights_only=True)`` reads back are used (tensors, ints,
    floats, strings, tuples), so checkpoints stay loadable with the safe unpickler.

    Returns:
        ``dict(python, numpy, torch)`` and ``cuda`` (the current device's state) when CUDA
        is in use.
    """
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    states = dict(
        python=random.getstate(),
        numpy=dict(name=name, key=torch.from_numpy(key.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), cached_gaussian=float(cached_gaussian)),
        torch=torch.get_rng_state())
    # only the current device: reading every device's state would create a CUDA context on
    # each GPU in every process
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state()
    return states


def set_rng_states(states: dict) -> None:
    """Put the generators back into states returned by :func:`get_rng_states`.

    Args:
        states: A dict from :func:`get_rng_states`; its tensors may be on any device (the
            runner loads checkpoints onto the training device).
    """
    random.setstate(states['python'])
    state = states['numpy']
    np.random.set_state((state['name'], state['key'].cpu().numpy().astype(np.uint32),
                         state['pos'], state['has_gauss'], state['cached_gaussian']))
    torch.set_rng_state(states['torch'].cpu())
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states['cuda'].cpu())


class _RestoreAfterSkip:
    """Stands in for the train loop's data iterator while a resumed loop skips batches.

    After ``skip`` batches (the ones the interrupted run trained on) it sets the generator
    states, hands the loop its own iterator back and returns the first new batch.

    Args:
        loop: The ``IterBasedTrainLoop``.
        skip: How many batches the loop skips before training.
        states: The states to set before the first new batch is loaded.
    """

    def __init__(self, loop: IterBasedTrainLoop, skip: int, states: dict) -> None:
        self._loop = loop
        self._iterator = loop.dataloader_iterator
        self._skip = skip
        self._states = states

    def __iter__(self) -> '_RestoreAfterSkip':
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
            return next(self._iterator)
        set_rng_states(self._states)
        self._loop.dataloader_iterator = self._iterator
        return next(self._iterator)

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the random generator states with each checkpoint and restores them on resume.

    The checkpoint holds ``checkpoint['rng_state']``: a list with one
    :func:`get_rng_states` dict per rank. A run resumed with another number of processes
    keeps its fresh seeds (with a warning): its random draws cannot repeat the original's.
    Loading weights with ``load_from`` and ``resume=False`` leaves the generators alone.
    """

    # after_train_iter: before CheckpointHook (VERY_LOW) saves
    priority = 'LOW'

    def __init__(self) -> None:
        self._rank_states: Optional[List[dict]] = None
        self._loaded: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # Checkpoints are written by rank 0 alone (Runner.save_checkpoint is master-only), so
        # the other ranks' states are collected here, where every rank takes part, after each
        # iteration: a checkpoint may follow any of them. It is one small message per step.
        if get_world_size() > 1:
            self._rank_states = all_gather_object(get_rng_states())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # a checkpoint written during validation (save_best) gets the states training goes
        # on with, those from before the validation
        own = self._before_val or get_rng_states()
        if get_world_size() == 1:
            states = [own]
        elif self._rank_states is not None:
            states = self._rank_states
        else:
            print_log("RNGStateHook: no training iteration has run yet; only rank 0's "
                      'generator states are saved', logger='current', level=logging.WARNING)
            states = [own]
        checkpoint[CHECKPOINT_KEY] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if CHECKPOINT_KEY in checkpoint:
            self._loaded = dict(states=checkpoint[CHECKPOINT_KEY],
                                iter=checkpoint.get('meta', {}).get('iter'))

    def before_train(self, runner) -> None:
        loaded, self._loaded = self._loaded, None
        # resume sets the loop's iteration to the checkpoint's; load_from leaves it at 0
        if loaded is None or runner.iter == 0 or runner.iter != loaded['iter']:
            return
        states = loaded['states']
        if len(states) != get_world_size():
            print_log(f'RNGStateHook: the checkpoint holds the generator states of '
                      f'{len(states)} process(es), this run has {get_world_size()}; the '
                      'generators keep their fresh seeds', logger='current',
                      level=logging.WARNING)
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            # IterBasedTrainLoop.run skips the `iter` batches trained before the checkpoint;
            # with num_workers=0 loading them moves the generators, so restore afterwards
            loop.dataloader_iterator = _RestoreAfterSkip(loop, loop.iter, states[get_rank()])
        else:
            # epoch-based loops resume at an epoch boundary without skipping batches
            set_rng_states(states[get_rank()])

    def before_val(self, runner) -> None:
        self._before_val = get_rng_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_rng_states(self._before_val)
            self._before_val = None
