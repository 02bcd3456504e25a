"""`clipnb_train_contrastive` runs unchanged under torchrun and accelerate launch (2 CPU processes,
gloo): it trains, keeps the best model, writes test metrics, and only rank 0 prints."""
import json, os, socket, subprocess, sys
from pathlib import Path
import pytest
from conftest import bin_path

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    os.environ['HF_HUB_OFFLINE'] = '1'
    from clipnb.synthetic import write_shapes, make_tiny_clip
    d = tmp_path_factory.mktemp('tiny')
    return write_shapes(d/'shapes', n_images=80, seed=0), make_tiny_clip(d/'clip')

def _train_args(files, model, out):
    return [bin_path('clipnb_train_contrastive'), '--model_name', str(model), '--dataset', str(files.hf), '--output_dir', str(out),
            '--max_steps', '4', '--train_bs', '8', '--eval_bs', '32', '--eval_steps', '2', '--lr', '1e-3']

def _check(r, out):
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count('best model:') == 1  # printed by rank 0 only
    m = json.loads((out/'test_metric.json').read_text())
    assert m['n_images'] == 8 and 0 <= m['text_to_image_R@5'] <= 1
    assert (out/'best_model'/'model.safetensors').exists()
    hist = json.loads((out/'history.json').read_text())
    assert max(h['step'] for h in hist) == 4

ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false')

def test_torchrun(tiny, tmp_path):
    files, model = tiny
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(free_port())] + _train_args(files, model, tmp_path/'run')
    _check(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV), tmp_path/'run')

def test_accelerate_launch(tiny, tmp_path):
    files, model = tiny
    cmd = [bin_path('accelerate'), 'launch', '--num_processes', '2', '--num_machines', '1', '--cpu', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '--main_process_port', str(free_port())] + _train_args(files, model, tmp_path/'run')
    _check(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV), tmp_path/'run')
