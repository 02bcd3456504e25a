"""`clipnb_train_contrastive` runs unchanged under torchrun, the legacy launcher and accelerate launch (2 CPU processes,
gloo): it learns (test R@5 well above the untrained model's), keeps the best model, writes test metrics, and only rank 0 prints."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import OFFLINE_ENV, bin_path
from clipnb.dist import free_port

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "The shapes set (200 images: 160 to train, 20 to test) and a tiny CLIP with a tokenizer learnt on its captions; its untrained test R@5."
    os.environ['HF_HUB_OFFLINE'] = '1'
    from clipnb.synthetic import write_shapes, make_tiny_clip, make_shapes
    from clipnb.models import load_model
    from clipnb.retrieval import evaluate_retrieval, load_retrieval_data
    d = tmp_path_factory.mktemp('tiny')
    files = write_shapes(d/'shapes', n_images=200, seed=0)
    model = make_tiny_clip(d/'clip', corpus=[c for cs in make_shapes(200, seed=0).captions[:160] for c in cs], vocab_size=600)
    untrained = evaluate_retrieval(load_model(model, 'cpu'), load_retrieval_data(files.hf, 'test'))['text_to_image_R@5']
    return files, model, untrained

def _train_args(files, model, out):
    return [bin_path('clipnb_train_contrastive'), '--model_name', str(model), '--dataset', str(files.hf), '--output_dir', str(out),
            '--max_steps', '80', '--train_bs', '16', '--eval_bs', '64', '--eval_steps', '40', '--lr', '2e-3', '--warmup_ratio', '0.1']

def _check(r, out, untrained):
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count('best model:') == 1, r.stdout[-2000:]  # printed by rank 0 only
    m = json.loads((out/'test_metric.json').read_text())
    assert m['n_images'] == 20
    assert m['text_to_image_R@5'] >= untrained + 0.2, (m['text_to_image_R@5'], untrained)  # the 2-process run learns
    assert (out/'best_model'/'model.safetensors').exists()
    hist = json.loads((out/'history.json').read_text())
    assert max(h['step'] for h in hist) == 80

ENV = OFFLINE_ENV

def test_torchrun(tiny, tmp_path):
    files, model, untrained = tiny
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2'] + _train_args(files, model, tmp_path/'run')
    _check(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV), tmp_path/'run', untrained)

def test_legacy_launcher(tiny, tmp_path):
    # python -m torch.distributed.launch passes --local-rank=N to the script (here the console script) and sets the rest in the environment
    files, model, untrained = tiny
    cmd = [sys.executable, '-m', 'torch.distributed.launch', '--nproc_per_node=2', f'--master_port={free_port()}'] + _train_args(files, model, tmp_path/'run')
    _check(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV), tmp_path/'run', untrained)

def test_accelerate_launch(tiny, tmp_path):
    files, model, untrained = tiny
    cmd = [bin_path('accelerate'), 'launch', '--num_processes', '2', '--num_machines', '1', '--cpu', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '--main_process_port', str(free_port())] + _train_args(files, model, tmp_path/'run')
    _check(subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV), tmp_path/'run', untrained)
