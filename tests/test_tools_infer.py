"""tools/infer.py: predictions equal the UDA wrapper's, ICCLD uncertainty, output names, clear
errors."""
import glob
import os
import os.path as osp
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from PIL import Image

import mmseg_iccld  # noqa: F401
from mmseg.registry import DATASETS, MODELS
from mmseg.utils import get_palette

torch.set_num_threads(1)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DAFORMER = osp.join(REPO, 'configs/synthetic/daformer_tiny.py')
ICCLD = osp.join(REPO, 'configs/synthetic/iccld_tiny.py')
PALETTE = np.array(get_palette('cityscapes'), dtype=np.uint8)


def build_uda(config: str, phase: int = 1):
    """The config's whole UDA model, randomly initialised (seed 0), and its state dict."""
    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if phase == 2:
        model.set_phase(2)
    return cfg, model.eval()


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('infer_checkpoints')
    paths = {}
    for name, config, phase in (('dacs', DAFORMER, 1), ('iccld', ICCLD, 2)):
        _, model = build_uda(config, phase)
        paths[name] = str(root / f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), paths[name])
    return paths


def wrapper_predictions(config: str, checkpoint: str, benchmark, phase=1, num_samples=None):
    """Predictions of the whole UDA model on the config's test set (as tools/test.py runs)."""
    cfg, model = build_uda(config, phase)
    model.load_state_dict(torch.load(checkpoint)['state_dict'])
    if num_samples is not None:
        model.student.test_cfg['num_samples'] = num_samples
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = benchmark.cityscapes_root
    dataset = DATASETS.build(dataset_cfg)
    out = {}
    with torch.no_grad():
        for i in range(len(dataset)):
            (sample, ) = model.test_step(pseudo_collate([dataset[i]]))
            out[osp.basename(sample.img_path)] = sample
    return out


def run_infer(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, 'tools/infer.py', *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def val_folder(benchmark) -> str:
    return osp.join(benchmark.cityscapes_root, 'leftImg8bit', 'val')


def test_folder_in_batches_gives_the_wrappers_predictions(synthetic_benchmark, checkpoints,
                                                          tmp_path):
    out = tmp_path / 'out'
    result = run_infer(DAFORMER, checkpoints['dacs'], val_folder(synthetic_benchmark),
                       '--out', str(out), '--batch-size', '2', '--opacity', '0.25')
    assert result.returncode == 0, result.stderr[-3000:]
    assert '4 image(s): masks, overlays, labels written to' in result.stdout
    assert '4/4' in result.stderr  # the progress bar
    reference = wrapper_predictions(DAFORMER, checkpoints['dacs'], synthetic_benchmark)
    assert len(reference) == 4
    for image_name, sample in reference.items():
        name = osp.join('eastbrook', image_name)  # the folder structure is kept
        expected = sample.pred_sem_seg.data[0].numpy()
        label = np.array(Image.open(out / 'labels' / name))
        np.testing.assert_array_equal(label, expected)
        assert len(np.unique(label)) > 1
        mask = np.array(Image.open(out / 'masks' / name))
        np.testing.assert_array_equal(mask, PALETTE[expected])
        image = np.array(Image.open(osp.join(val_folder(synthetic_benchmark), name)).convert('RGB'))
        overlay = np.array(Image.open(out / 'overlays' / name)).astype(float)
        np.testing.assert_allclose(overlay, 0.75 * image + 0.25 * PALETTE[expected], atol=0.51)
    assert not (out / 'uncertainty').exists()


def test_iccld_uncertainty_is_the_wrappers_entropy(synthetic_benchmark, checkpoints, tmp_path):
    image = sorted(glob.glob(osp.join(val_folder(synthetic_benchmark), '*', '*.png')))[0]
    out = tmp_path / 'out'
    result = run_infer(ICCLD, checkpoints['iccld'], image, '--out', str(out),
                       '--num-samples', '3')
    assert result.returncode == 0, result.stderr[-3000:]
    reference = wrapper_predictions(ICCLD, checkpoints['iccld'], synthetic_benchmark, phase=2,
                                    num_samples=3)[osp.basename(image)]
    name = osp.splitext(osp.basename(image))[0]
    entropy = np.load(out / 'uncertainty' / f'{name}.npy')
    expected = reference.uncertainty.data[0].numpy()
    np.testing.assert_allclose(entropy, expected, atol=1e-5)
    assert 0 < entropy.max() <= np.log(19) + 1e-5 and entropy.std() > 0
    picture = np.array(Image.open(out / 'uncertainty' / f'{name}.png'))
    assert picture.shape == expected.shape + (3, )
    np.testing.assert_array_equal(np.array(Image.open(out / 'labels' / f'{name}.png')),
                                  reference.pred_sem_seg.data[0].numpy())


# errors, in the same process (argument checks come before anything heavy)


@pytest.fixture(scope='module')
def infer_main():
    return runpy.run_path(osp.join(REPO, 'tools/infer.py'), run_name='infer')['main']


def error_of(infer_main, capsys, *args) -> str:
    with pytest.raises(SystemExit) as info:
        infer_main(list(args))
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == '(set MMSEG_ICCLD_TRACEBACK=1 for the full traceback)'
    return lines[-2]


def write_image(path, width: int, height: int, value: int = 90) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)
    return str(path)


def test_missing_input_checkpoint_and_unreadable_images(infer_main, capsys, tmp_path):
    checkpoint = str(tmp_path / 'some.pth')
    open(checkpoint, 'wb').close()
    missing = str(tmp_path / 'nowhere')
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, missing) == \
        f'error: FileNotFoundError: input {missing} does not exist'
    assert error_of(infer_main, capsys, DAFORMER, missing + '.pth', missing) == \
        f'error: FileNotFoundError: checkpoint {missing}.pth does not exist'
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, str(empty)).startswith(
        'error: FileNotFoundError: no images (.png, .jpg')

    folder = tmp_path / 'frames'
    write_image(folder / 'frame_1.png', 8, 6)
    cut = write_image(folder / 'frame_2.png', 8, 6)
    data = open(cut, 'rb').read()
    open(cut, 'wb').write(data[:-20])
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, str(folder)) == \
        f'error: DataFileError: {cut}: truncated PNG (the file does not end with the IEND chunk)'
    os.remove(cut)
    garbage = str(folder / 'frame_3.jpg')
    open(garbage, 'wb').write(b'this is no image at all')
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, str(folder)).startswith(
        f'error: DataFileError: {garbage}: unreadable image')


def test_mixed_sizes_are_refused_where_one_size_is_needed(infer_main, capsys, tmp_path):
    checkpoint = str(tmp_path / 'some.pth')
    open(checkpoint, 'wb').close()
    folder = tmp_path / 'frames'
    first = write_image(folder / 'frame_9.png', 8, 6)
    other = write_image(folder / 'frame_10.png', 9, 6)  # natural order: frame_9 first
    write_image(folder / 'frame_11.png', 8, 6)
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, str(folder), '--batch-size',
                    '2') == (f'error: ValueError: images of different sizes: {first} is 8x6, '
                             f'{other} is 9x6 (width x height); --batch-size 2 batches them '
                             'together (use --batch-size 1 for images of mixed sizes)')
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, str(folder),
                    '--same-size').endswith('9x6 (width x height); --same-size requires one size')


def test_checkpoint_of_another_model_and_num_samples_without_iccld(
        infer_main, capsys, checkpoints, tmp_path):
    image = write_image(tmp_path / 'a.png', 64, 32)
    line = error_of(infer_main, capsys, DAFORMER, checkpoints['iccld'], image)
    assert line.startswith(f"error: CheckpointMismatchError: checkpoint {checkpoints['iccld']} "
                           f"(its 'model.*' weights) does not fit the EncoderDecoder of "
                           f"{DAFORMER}: 50 of the model's 150 keys missing (decode_head.")
    assert '230 unexpected keys (phase, neck.' in line
    assert error_of(infer_main, capsys, DAFORMER, checkpoints['dacs'], image,
                    '--num-samples', '2') == ('error: ValueError: --num-samples needs an ICCLD '
                                              'model; EncoderDecoder draws no noise')


# output names and output folders


# the record of the files tools/infer.py wrote into its output folder
RECORD = '.written_by_infer.jsonl'


def files_below(folder) -> list:
    """Every file below ``folder`` (hidden ones too), as sorted relative paths."""
    return sorted(osp.relpath(osp.join(parent, name), folder)
                  for parent, _, names in os.walk(folder) for name in names)


def test_images_differing_only_in_extension_keep_both_outputs(infer_main, capsys, checkpoints,
                                                              tmp_path):
    folder = tmp_path / 'frames'
    png = write_image(folder / 'frame.png', 64, 32, value=40)
    jpg = write_image(folder / 'frame.jpg', 64, 32, value=200)
    write_image(folder / 'sub' / 'frame.png', 64, 32)  # another folder: no clash
    out = tmp_path / 'out'
    infer_main([DAFORMER, checkpoints['dacs'], str(folder), '--out', str(out), '--opacity', '0'])
    stdout = capsys.readouterr().out
    assert ('note: 2 image(s) share their name with an image of another extension; their '
            'outputs keep it: frame.jpg.png, frame.png.png') in stdout
    assert f'3 image(s): masks, overlays, labels written to {out}' in stdout
    assert files_below(out) == [RECORD] + [
        f'{kind}/{name}' for kind in ('labels', 'masks', 'overlays')
        for name in ('frame.jpg.png', 'frame.png.png', 'sub/frame.png')]
    # with opacity 0 an overlay is its own image
    for image, name in ((png, 'frame.png.png'), (jpg, 'frame.jpg.png')):
        expected = np.array(Image.open(image).convert('RGB')).astype(int)
        overlay = np.array(Image.open(out / 'overlays' / name)).astype(int)
        assert np.abs(overlay - expected).max() <= 2, name


def test_images_whose_outputs_would_still_clash_are_refused(infer_main, capsys, tmp_path):
    checkpoint = str(tmp_path / 'some.pth')
    open(checkpoint, 'wb').close()
    folder = tmp_path / 'frames'
    for name in ('frame.png', 'frame.jpg', 'frame.png.jpg'):
        write_image(folder / name, 8, 6)
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, str(folder)) == (
        f'error: ValueError: images {folder}/frame.png and {folder}/frame.png.jpg would both '
        'be written as frame.png.png: rename one of them')


def test_output_folder_inside_the_input_is_not_read_back(infer_main, capsys, checkpoints,
                                                         tmp_path):
    folder = tmp_path / 'photos'
    write_image(folder / 'a.png', 64, 32)
    out = folder / 'pred'
    args = [DAFORMER, checkpoints['dacs'], str(folder), '--out', str(out)]
    infer_main(args)
    first = capsys.readouterr().out
    assert 'note: not read as input' not in first
    written = files_below(out)
    assert written == [RECORD, 'labels/a.png', 'masks/a.png', 'overlays/a.png']
    infer_main(args)
    second = capsys.readouterr().out
    assert (f'note: not read as input (the output of --out {out}): {out}/labels, {out}/masks, '
            f'{out}/overlays') in second
    assert f'1 image(s): masks, overlays, labels written to {out}' in second
    assert files_below(out) == written  # no pred/masks/pred/... from reading its own output


def test_unwritable_output_folder_is_an_error_before_the_model_is_built(infer_main, capsys,
                                                                        tmp_path):
    checkpoint = str(tmp_path / 'some.pth')
    open(checkpoint, 'wb').close()  # no checkpoint: the folder is checked before it is read
    image = write_image(tmp_path / 'a.png', 8, 6)
    blocker = tmp_path / 'results'
    blocker.write_text('a file where a folder is meant to be')
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, image, '--out',
                    str(blocker / 'pred')) == (f'error: OutputPathError: --out folder '
                                               f'{blocker}/pred cannot be created: {blocker} is '
                                               'not a folder')
    assert error_of(infer_main, capsys, DAFORMER, checkpoint, image, '--out', str(blocker)) == \
        f'error: OutputPathError: --out folder {blocker} exists and is not a folder'


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders: chmod '
                    'cannot make a folder unwritable (the file-parent variant still runs)')
def test_read_only_output_folder_is_an_error_before_the_model_is_built(infer_main, capsys,
                                                                       tmp_path):
    checkpoint = str(tmp_path / 'some.pth')
    open(checkpoint, 'wb').close()
    image = write_image(tmp_path / 'a.png', 8, 6)
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        assert error_of(infer_main, capsys, DAFORMER, checkpoint, image, '--out',
                        str(read_only)) == \
            f'error: OutputPathError: --out folder {read_only} is not writable'
        assert error_of(infer_main, capsys, DAFORMER, checkpoint, image, '--out',
                        str(read_only / 'pred')) == (
            f'error: OutputPathError: --out folder {read_only}/pred cannot be created: '
            f'{read_only} is not writable')
    finally:
        read_only.chmod(0o755)


def test_a_result_file_that_cannot_be_written_is_one_line_naming_it(infer_main, capsys,
                                                                    checkpoints, tmp_path):
    image = write_image(tmp_path / 'in' / 'a.png', 64, 32)
    out = tmp_path / 'out'
    (out / 'labels' / 'a.png').mkdir(parents=True)  # a folder where the label map goes
    assert error_of(infer_main, capsys, DAFORMER, checkpoints['dacs'], image, '--out',
                    str(out)) == f'error: OutputPathError: cannot write {out}/labels/a.png: ' \
                                 'Is a directory'
    # what was written before stays, complete; no partial file is left behind
    assert files_below(out) == [RECORD, 'masks/a.png', 'overlays/a.png']
    assert np.array(Image.open(out / 'masks' / 'a.png')).shape == (32, 64, 3)
