"""DACS.train_step under MMSeparateDistributedDataParallel: two CPU (gloo) processes."""
import gc
import os.path as osp

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD_SIZE = 2


def _flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def _gather(tensor: torch.Tensor) -> list:
    out = [torch.zeros_like(tensor) for _ in range(WORLD_SIZE)]
    dist.all_gather(out, tensor)
    return out


def _worker(rank: int, init_file: str, result_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=WORLD_SIZE)
    from mmengine.model import MMSeparateDistributedDataParallel, is_model_wrapper
    from test_dacs_train_step import build_dacs, optim_wrapper, uda_batch

    results = {}
    for wrapped in (True, False):
        torch.manual_seed(0)  # the same initial model on both ranks
        dacs = build_dacs()
        theta0 = _flat(dacs.model)
        model = dacs
        if wrapped:
            model = MMSeparateDistributedDataParallel(
                module=dacs, broadcast_buffers=False, find_unused_parameters=True)
            results['student_wrapped'] = is_model_wrapper(dacs.model)
            results['frozen_unwrapped'] = not (is_model_wrapper(dacs.teacher)
                                               or is_model_wrapper(dacs.imnet_backbone))
        torch.manual_seed(rank)  # different data and augmentation on each rank
        log = model.train_step(uda_batch(seed=rank), optim_wrapper(dacs))
        student = dacs.model.module if wrapped else dacs.model
        theta1 = _flat(student)
        gathered = _gather(theta1)
        key = 'ddp' if wrapped else 'plain'
        results[f'{key}_same_on_ranks'] = torch.equal(gathered[0], gathered[1])
        results[f'{key}_changed'] = not torch.equal(theta0, theta1)
        results[f'{key}_teacher_ema'] = torch.allclose(
            _flat(dacs.teacher.module), 0.5 * theta0 + 0.5 * theta1, atol=1e-6)
        results[f'{key}_logged'] = 'src.loss_feat_dist' in log and 'mix.decode.loss_ce' in log
        # the DDP wrapper's reducer must be gone before the process group is: destroying the
        # group under a live reducer aborts the process now and then ("terminate called
        # without an active exception")
        del model, dacs, student
        gc.collect()
    torch.save(results, osp.join(result_dir, f'{rank}.pt'))
    dist.barrier()
    dist.destroy_process_group()


def test_gradients_are_synchronised_across_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=WORLD_SIZE,
             join=True)
    for rank in range(WORLD_SIZE):
        results = torch.load(tmp_path / f'{rank}.pt')
        assert results['student_wrapped'] and results['frozen_unwrapped']
        assert results['ddp_same_on_ranks'], 'DDP did not average the gradients'
        assert results['ddp_changed'] and results['ddp_teacher_ema'] and results['ddp_logged']
        # the same step without DDP diverges: the check above can fail
        assert not results['plain_same_on_ranks']
        assert results['plain_changed'] and results['plain_teacher_ema']
