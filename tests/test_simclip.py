"""`clipnb_simclip` with the SimCLIP seed's README flags, as written (hyphens, `=`, `--synthesis-prop` as a fraction), on CPU: a few
iterations in one process and under torchrun with two (whole clusters per rank, one report)."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import OFFLINE_ENV, bin_path
from clipnb.dist import free_port

ENV = OFFLINE_ENV

@pytest.fixture(scope='module')
def tsvs(tmp_path_factory):
    "The seed's layout: train and val TSVs with a header (image, caption1..caption5) and the images in their own folders."
    from clipnb.synthetic import write_shapes
    from clipnb.shapes import shapes_model_path
    d = tmp_path_factory.mktemp('simclip')
    files = write_shapes(d/'shapes', n_images=80, seed=9)
    lines = files.tsv.read_text().splitlines()
    head = 'image\t' + '\t'.join(f'caption{i}' for i in range(1, 6))
    strip = lambda l: l.replace('images/', '', 1)  # the image folder is given separately, as in the seed
    (d/'train.tsv').write_text('\n'.join([head] + [strip(l) for l in lines[:64]]) + '\n')
    (d/'val.tsv').write_text('\n'.join([head] + [strip(l) for l in lines[64:]]) + '\n')
    return d, files.images, str(shapes_model_path())

def seed_args(d, images, model, exp, *extra):
    return ['--data-parallel', '--batch-size', '16', '--val-batch-size', '32', f'--train_tsv={d/"train.tsv"}', f'--val_tsv={d/"val.tsv"}',
            f'--train-image-dir={images}', f'--val-image-dir={images}', '--num-epochs', '2', f'--save-dir={d/"ckpts"}', f'--model-name={model}',
            f'--exp-name={exp}', '--synthesis', '--online-sim=text', '--max-iters-per-epoch', '2', '--num-clusters=2', '--synthesis-prop=1/2',
            '--seed', '1', '--device', 'cpu', *extra]

def _check(r, run):
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count('best model:') == 1, r.stdout[-2000:]
    cfg = json.loads((run/'train_config.json').read_text())
    assert cfg['splits']['validation']['images'] == 16 and cfg['epochs'] == 2
    hist = json.loads((run/'history.json').read_text())
    assert max(h['step'] for h in hist) == 4  # 2 epochs of at most 2 batches
    assert 'within_cluster_sim' in r.stdout and (run/'best_model'/'model.safetensors').exists() and (run/'logs').is_dir()

def test_seed_flags_one_process(tsvs):
    d, images, model = tsvs
    r = subprocess.run([bin_path('clipnb_simclip'), *seed_args(d, images, model, 'one')], capture_output=True, text=True, timeout=600, env=ENV)
    _check(r, d/'ckpts'/'one')
    assert '0.5' in r.stdout.split('within_cluster_sim')[1].splitlines()[1]  # p = 1/2

def test_seed_flags_under_torchrun(tsvs):
    d, images, model = tsvs
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(free_port()), bin_path('clipnb_simclip'),
           *seed_args(d, images, model, 'two')]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    _check(r, d/'ckpts'/'two')
    assert json.loads((d/'ckpts'/'two'/'train_config.json').read_text())['train_bs'] == 8  # N = 16 over 2 processes
