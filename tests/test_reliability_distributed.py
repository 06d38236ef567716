"""Distributed ICCLD training means what single-process training with the same total batch
means: two CPU (gloo) processes with one sample each log the same losses, step for step
(phases 1 and 2), and end with the same student, teacher and discriminator as one process
with both samples.

What the comparison needs, and how it is arranged:

- Batch-level quantities are reduced across ranks by the plugin: the DACS pseudo-label
  weight (one confident fraction per batch) is counted over all ranks. The check that it
  matters: the two ranks' own fractions differ.
- Batch statistics: torch's SyncBatchNorm runs on GPUs only, so the test model is the tiny
  ICCLD config with GroupNorm in the latent projector and the head (MiT and the UNet already
  normalise per sample). GPU configs keep BN; multi-GPU runs should use SyncBN.
- Per-sample random draws (ClassMix classes, diffusion noise, timesteps and the chain's
  initial noise) come from
  generators seeded by the sample's index in both runs, through the production functions, so
  they do not depend on how the batch is split; color jitter, blur, dropout and drop path,
  whose draws do, are switched off.
- Losses are pixel means over equal crops, and every sample has the same number of
  thing-class pixels, so each rank's normaliser is half the single process's: the mean of the
  ranks' losses is the single process's loss.
"""
import os.path as osp

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config, ConfigDict
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
WORLD_SIZE = 2
ITERS, SWITCH_ITER = 4, 2
SIZE = 64
# The tiny teacher's max softmax is about 1/19 at first and grows with training: with this
# threshold the confident fractions lie strictly between 0 and 1 in all four iterations.
PSEUDO_THRESHOLD = 0.06
RTOL, ATOL = 1e-5, 1e-6  # float32 rounding of the reductions: about 1e-7 relative


def _build(wrapped: bool):
    """The tiny ICCLD UDA model of configs/synthetic/iccld_tiny.py and its optimizers."""
    from mmengine.model import MMSeparateDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'synthetic', 'iccld_tiny.py'))
    model_cfg = cfg.model
    group_norm = dict(type='GN', num_groups=8, requires_grad=True)
    model_cfg.model.neck.norm_cfg = group_norm
    model_cfg.model.decode_head.norm_cfg = group_norm
    model_cfg.model.decode_head.dropout_ratio = 0.0
    model_cfg.model.backbone.drop_path_rate = 0.0
    model_cfg.update(color_jitter_probability=0.0, blur=False,
                     pseudo_threshold=PSEUDO_THRESHOLD)
    torch.manual_seed(0)  # the same initial weights in every process
    uda = MODELS.build(ConfigDict(model_cfg))
    uda.init_weights()
    uda.train()
    # The frozen copies are made here (the training step then does not copy again), and the
    # student then moves off them: at distance 0 the feature distance's gradient is the
    # direction of rounding noise (torch's attention fast path in the frozen copy rounds
    # differently), which differs with the batch split and would decide the comparison.
    uda.initialize_frozen_copies()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in uda.student.backbone.parameters():
            param.add_(torch.randn(param.shape, generator=generator), alpha=0.01)
    model = uda
    if wrapped:
        model = MMSeparateDistributedDataParallel(
            module=uda, broadcast_buffers=False, find_unused_parameters=True)
    # SGD instead of the configs' Adam(W): Adam's first steps move an element with a gradient
    # below its eps (1e-8) by lr * g / eps, so gradient rounding of 1e-9 becomes a weight
    # difference of 1e-4, which would decide the comparison; SGD passes it on linearly.
    optim_cfg = cfg.optim_wrapper
    optim_cfg.model.optimizer = dict(type='SGD', lr=0.003, momentum=0.9, weight_decay=0.01)
    optim_cfg.discriminator.optimizer = dict(type='SGD', lr=0.01, momentum=0.9)
    return uda, model, build_optim_wrapper(model, optim_cfg)


def _label(index: int) -> torch.Tensor:
    """Quadrants car | road over person | sky, mirrored for odd samples: every sample has the
    same classes and pixel counts, at different places."""
    label = torch.empty(1, SIZE, SIZE, dtype=torch.long)
    half = SIZE // 2
    label[:, :half, :half], label[:, :half, half:] = 13, 0
    label[:, half:, :half], label[:, half:, half:] = 11, 10
    return label.flip(-1) if index % 2 else label


def _batch(indices) -> dict:
    batch = dict(inputs=[], data_samples=[], target_inputs=[], target_data_samples=[])
    for index in indices:
        generator = torch.Generator().manual_seed(index)
        meta = dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE), sample_idx=index)
        for prefix in ('', 'target_'):
            batch[f'{prefix}inputs'].append(torch.randint(
                0, 256, (3, SIZE, SIZE), dtype=torch.uint8, generator=generator))
            sample = SegDataSample(metainfo=meta)
            if not prefix:
                sample.gt_sem_seg = PixelData(data=_label(index))
            batch[f'{prefix}data_samples'].append(sample)
    return batch


def _install_per_sample_draws(setattr_, local_fractions: list) -> None:
    """Seed ClassMix and the diffusion draws by sample index; record each call's own
    (not reduced) confident fraction."""
    from mmseg_iccld.models.diffusion import DiffusionDraw
    from mmseg_iccld.models.segmentors.iccld import ICCLD
    from mmseg_iccld.models.uda import classmix, pseudo_label
    from mmseg_iccld.models.uda.dacs import DACS

    def mix(self, inputs, data_samples, target_inputs, pseudo_labels, pseudo_weights):
        masks = []
        for sample in data_samples:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample.metainfo['sample_idx'])
                masks.append(classmix.class_mix_masks(sample.gt_sem_seg.data[None],
                                                      self.ignore_index))
        mixed, samples = self.mix_with_masks(torch.cat(masks), inputs, data_samples,
                                             target_inputs, pseudo_labels, pseudo_weights)
        return self.photometric_augmentation(mixed), samples

    uda_loss = ICCLD.uda_loss

    def seeded_uda_loss(self, inputs, data_samples, draw=None, **kwargs):
        if draw is None and self.in_phase2:
            # the source pass draws; the mixed and target passes reuse its draw
            h, w = (-(-size // 4) for size in inputs.shape[2:])
            parts = []
            for sample in data_samples:
                generator = torch.Generator().manual_seed(10000 + sample.metainfo['sample_idx'])
                shape = (1, self.diffusion.num_classes, h, w)
                parts.append((torch.randn(shape, generator=generator),
                              torch.randint(0, self.diffusion.num_train_timesteps, (1, ),
                                            generator=generator),
                              torch.randn(shape, generator=generator)))
            draw = DiffusionDraw(*(torch.cat(part) for part in zip(*parts)))
        return uda_loss(self, inputs, data_samples, draw=draw, **kwargs)

    pseudo_label_from_logits = pseudo_label.pseudo_label_from_logits

    def recording(logits, threshold, *args, **kwargs):
        max_probs = torch.softmax(logits.float(), dim=1).max(dim=1).values
        local_fractions.append((max_probs >= threshold).float().mean().item())
        return pseudo_label_from_logits(logits, threshold, *args, **kwargs)

    setattr_(DACS, 'mix', mix)
    setattr_(ICCLD, 'uda_loss', seeded_uda_loss)
    setattr_(pseudo_label, 'pseudo_label_from_logits', recording)


def _train(samples_per_iter, setattr_) -> dict:
    """ITERS iterations, phase 2 from SWITCH_ITER on, as ICCLDPhaseHook schedules them."""
    from mmengine.model import is_model_wrapper

    from mmseg_iccld.engine.hooks.iccld_phase_hook import ICCLDPhaseHook

    local_fractions = []
    _install_per_sample_draws(setattr_, local_fractions)
    uda, model, optim_wrapper = _build(wrapped=dist.is_initialized())
    schedule = ICCLDPhaseHook(switch_iter=SWITCH_ITER, lambda_adv=0.1, lambda_adv_ramp_iters=2)
    logs = []
    for it in range(ITERS):
        uda.set_phase(schedule.phase_at(it), schedule.lambda_adv_at(it))
        log = model.train_step(_batch(samples_per_iter(it)), optim_wrapper)
        logs.append({k: v.item() for k, v in log.items()})
    discriminator = uda.discriminator
    discriminator = discriminator.module if is_model_wrapper(discriminator) else discriminator
    states = {name: {k: v.detach().clone() for k, v in module.state_dict().items()}
              for name, module in (('student', uda.student), ('teacher', uda.teacher),
                                   ('discriminator', discriminator))}
    return dict(logs=logs, states=states, local_fractions=local_fractions)


def _rng_states_per_rank(rank: int) -> dict:
    """RNGStateHook under two ranks: rank 0 writes the checkpoint, and each rank gets its
    own generator states back on resume."""
    import random
    from types import SimpleNamespace

    import numpy as np
    from mmengine.dist import broadcast_object_list

    from mmseg_iccld.engine.hooks.rng_state_hook import RNGStateHook

    torch.manual_seed(100 + rank)
    np.random.seed(100 + rank)
    random.seed(100 + rank)
    hook = RNGStateHook()
    runner = SimpleNamespace(iter=4, train_loop=SimpleNamespace())
    hook.after_train_iter(runner, batch_idx=3)  # every rank takes part
    checkpoint = [dict(meta=dict(iter=4))]
    if rank == 0:  # Runner.save_checkpoint runs on rank 0 alone
        hook.before_save_checkpoint(runner, checkpoint[0])
    expected = (torch.rand(4), np.random.rand(4).tolist(), random.random())
    broadcast_object_list(checkpoint)  # every rank loads the file rank 0 wrote
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    hook.after_load_checkpoint(runner, checkpoint[0])
    hook.before_train(runner)
    actual = (torch.rand(4), np.random.rand(4).tolist(), random.random())
    return dict(saved_ranks=len(checkpoint[0]['rng_state']), expected=expected, actual=actual)


def _worker(rank: int, init_file: str, result_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=WORLD_SIZE)
    import mmseg_iccld  # noqa: F401
    from mmengine.runner import set_random_seed

    results = _train(lambda it: [WORLD_SIZE * it + rank], setattr)
    results['rng'] = _rng_states_per_rank(rank)
    # the project's runtime gives each rank its own seed, hence its own draws
    randomness = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'default_runtime.py')).randomness
    results['seed'] = set_random_seed(seed=0, diff_rank_seed=randomness.diff_rank_seed)
    results['timesteps'] = torch.randint(0, 1000, (8, ))
    torch.save(results, osp.join(result_dir, f'{rank}.pt'))
    dist.destroy_process_group()


def test_two_ranks_train_like_one_process_with_the_whole_batch(tmp_path, monkeypatch):
    mp.spawn(_worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=WORLD_SIZE,
             join=True)
    ranks = [torch.load(tmp_path / f'{rank}.pt') for rank in range(WORLD_SIZE)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = _train(lambda it: [WORLD_SIZE * it + r for r in range(WORLD_SIZE)],
                        monkeypatch.setattr)
    finally:
        torch.set_num_threads(threads)

    for it in range(ITERS):
        expected = single['logs'][it]
        if it >= SWITCH_ITER:  # phase 2 ran: diffusion, target and discriminator terms
            assert {'tgt.loss_ldm', 'src.loss_adv_gen', 'dis.loss'} <= set(expected)
        for key, value in expected.items():
            mean = sum(rank['logs'][it][key] for rank in ranks) / WORLD_SIZE
            assert abs(mean - value) <= ATOL + RTOL * abs(value), (it, key, mean, value)
        # Every rank weighs its pseudo-labels with the confident fraction of the whole batch:
        # the mean of the ranks' own fractions, which differ (so without the reduction the
        # ranks' mixed losses would not average to the single process's).
        own = [rank['local_fractions'][it] for rank in ranks]
        assert own[0] != own[1] and 0 < expected['pseudo_weight'] < 1, own
        for rank in ranks:
            assert abs(rank['logs'][it]['pseudo_weight'] - sum(own) / WORLD_SIZE) < 1e-7
            assert abs(rank['logs'][it]['pseudo_weight'] - expected['pseudo_weight']) < 1e-7

    for name, state in single['states'].items():
        for key, value in state.items():
            if not value.is_floating_point():
                assert all(torch.equal(rank['states'][name][key], value) for rank in ranks)
                continue
            for rank in ranks:
                torch.testing.assert_close(rank['states'][name][key], value, rtol=RTOL,
                                           atol=ATOL, msg=lambda m: f'{name}.{key}: {m}')

    for rank in ranks:
        rng = rank['rng']
        assert rng['saved_ranks'] == WORLD_SIZE
        assert torch.equal(rng['actual'][0], rng['expected'][0])
        assert rng['actual'][1] == rng['expected'][1]
        assert rng['actual'][2] == rng['expected'][2]
    assert not torch.equal(ranks[0]['rng']['actual'][0], ranks[1]['rng']['actual'][0])

    assert ranks[0]['seed'] != ranks[1]['seed']
    assert not torch.equal(ranks[0]['timesteps'], ranks[1]['timesteps'])
