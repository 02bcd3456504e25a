"""`clipnb_train_classifier` and `clipnb_predict` as seed 002's README runs them (train_clip.py, inference_clip.py): the folders
and files it promises, `--validate_data`, `--resume latest`, `torchrun` (two processes take the steps of one), and predictions."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
import torch
from conftest import OFFLINE_ENV, bin_path
from clipnb.dist import free_port

ENV = OFFLINE_ENV

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A shapes set with the image files in data/ and train/val/test tables (paths relative to data/) in tables/."
    from clipnb.testing import labelled_splits
    from clipnb.shapes import shapes_model_path
    d = tmp_path_factory.mktemp('cls')
    files, paths = labelled_splits(d/'data', n_images=60, seed=5)
    (d/'tables').mkdir()
    for s, name in (('train', 'train'), ('validation', 'val'), ('test', 'test')): shutil.move(paths[s], d/'tables'/f'{name}.csv')
    return dict(d=d, base=files.root, model=str(shapes_model_path()), lab=pd.read_csv(files.labels_csv))

def run(*args, timeout=600, launcher=()):
    cmd = [*launcher, *map(str, args)] if launcher else [bin_path(args[0]), *map(str, args[1:])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)

def train_args(data, out, *extra):
    t = data['d']/'tables'
    return ['clipnb_train_classifier', '--train_csv', t/'train.csv', '--val_csv', t/'val.csv', '--image_base_path', data['base'], '--model_name', data['model'],
            '--output_dir', out, '--epochs', '2', '--batch_size', '16', '--learning_rate', '1e-3', '--weight_decay', '0.01', '--num_workers', '0',
            '--device', 'cpu', '--seed', '0', *extra]

def test_seed_train_and_predict_commands(data, tmp_path):
    out = tmp_path/'fine_tuned_clip'
    r = run(*train_args(data, out, '--negatives', 'attribute:1', '--backbone_lr', '1e-4'))
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'validation, zero-shot:' in r.stdout and 'best model:' in r.stdout
    for folder in ('best_model', 'checkpoint_epoch_1', 'checkpoint_epoch_2', 'final_model'):
        names = {p.name for p in (out/folder).iterdir()}
        assert {'config.json', 'preprocessor_config.json', 'model.safetensors', 'classification_head.pt', 'training_stats.json'} <= names, (folder, names)
    st = json.loads((out/'best_model'/'training_stats.json').read_text())
    assert [h['epoch'] for h in st['history']] == [1, 2] and {'train_loss', 'val_loss', 'train_accuracy', 'val_accuracy'} <= set(st['history'][0])
    assert 0 < st['threshold'] < 1 and st['criterion'] == 'max_f1' and st['negatives']
    assert {p.name for p in (out/'plots').iterdir()} >= {'roc.png', 'pr.png', 'reliability.png', 'confusion.png', 'training_curves.png'}
    # the backbone moved (fine-tuned), and best_model loads with plain transformers plus the head file
    from transformers import AutoModel
    a, b = AutoModel.from_pretrained(out/'best_model'), AutoModel.from_pretrained(data['model'])
    assert not torch.equal(a.vision_model.embeddings.patch_embedding.weight, b.vision_model.embeddings.patch_embedding.weight)
    head = torch.load(out/'best_model'/'classification_head.pt', weights_only=True)
    assert head['config']['dim'] == 64 and 'net.1.weight' in head['state_dict']
    # inference_clip.py --image --text --model: the boxed result, with the saved threshold
    img = data['lab'].image_path[0]
    r = run('clipnb_predict', '--model', out/'best_model', '--image', data['base']/img, '--text', data['lab'].text[0], '--device', 'cpu')
    assert r.returncode == 0, r.stderr[-2000:]
    for field in ('Image:', 'Text:', 'Similarity Score:', f"Threshold: {st['threshold']:.4f}", 'Prediction: ', 'Is Match: '): assert field in r.stdout, r.stdout
    # inference_clip.py --csv --image_base_path --output: every row, in order, one unreadable image as an error row
    t = pd.read_csv(data['d']/'tables'/'test.csv'); t.loc[2, 'image_path'] = 'images/gone.png'; t.to_csv(tmp_path/'test.csv', index=False)
    r = run('clipnb_predict', '--model', out/'best_model', '--csv', tmp_path/'test.csv', '--image_base_path', data['base'], '--output', tmp_path/'pred.csv',
            '--device', 'cpu', '--batch_size', '7')
    assert r.returncode == 0, r.stderr[-2000:]
    p = pd.read_csv(tmp_path/'pred.csv')
    assert list(p.columns[:7]) == ['image_path', 'text', 'similarity_score', 'probability', 'threshold', 'is_match', 'prediction']
    assert p.text.tolist() == t.text.tolist() and p.prediction[2] == 'error' and (p.prediction[p.index != 2] != 'error').all()
    ok = p.prediction != 'error'
    assert ((p.is_match[ok].astype(str) == 'True') == (p.label[ok] == 1)).mean() > 0.8  # held-out pairs, mostly right
    assert '1 errors' in r.stdout

def test_validate_data(data, tmp_path):
    r = run(*train_args(data, tmp_path/'v', '--validate_data'))
    assert r.returncode == 0 and r.stdout.count('labels: {0: ') == 2, r.stdout + r.stderr
    t = pd.read_csv(data['d']/'tables'/'train.csv')
    t.loc[3, 'label'] = 2; t.loc[5, 'image_path'] = 'images/nope.png'
    t.to_csv(tmp_path/'bad.csv', index=False)
    args = train_args(data, tmp_path/'v', '--validate_data'); args[2] = tmp_path/'bad.csv'
    r = run(*args)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'bad_label x1 (rows 3)' in r.stdout and 'missing_image x1 (rows 5)' in r.stdout, r.stdout
    assert not (tmp_path/'v').exists()  # it only validates

def test_resume_latest_equals_training_straight(data, tmp_path):
    extra = ('--freeze_backbone', '--epochs', '3')
    assert run(*train_args(data, tmp_path/'a', *extra)).returncode == 0
    r = run(*train_args(data, tmp_path/'b', *extra)); assert r.returncode == 0
    for p in ('checkpoint_epoch_2', 'checkpoint_epoch_3', 'final_model'): shutil.rmtree(tmp_path/'b'/p)  # as if killed after epoch 1
    r = run(*train_args(data, tmp_path/'b', *extra, '--resume', 'latest'))
    assert r.returncode == 0, r.stderr[-2000:]
    ha, hb = (torch.load(tmp_path/x/'final_model'/'classification_head.pt', weights_only=True)['state_dict'] for x in ('a', 'b'))
    assert all(torch.allclose(ha[k], hb[k], atol=1e-6) for k in ha)
    r = run(*train_args(data, tmp_path/'b', *extra))  # neither --resume nor --overwrite: refused, nothing touched
    assert r.returncode == 2 and '--resume latest continues it, --overwrite starts again' in r.stderr
    r = run(*train_args(data, tmp_path/'b', '--freeze_backbone', '--epochs', '4', '--resume', 'latest', '--learning_rate', '5e-3'))
    assert r.returncode == 2 and 'learning_rate: 0.001 → 0.005' in r.stderr, r.stderr

def _head(out): return torch.load(out/'final_model'/'classification_head.pt', weights_only=True)['state_dict']

def test_torchrun_two_processes_take_the_steps_of_one(data, tmp_path):
    # fine-tuning (DDP over backbone and head), no dropout: 2 ranks x 8 pairs per step = 1 process x 16
    extra = ('--dropout', '0', '--negatives', 'random:1')
    one = run(*train_args(data, tmp_path/'one', *extra))
    assert one.returncode == 0, one.stderr[-3000:]
    two_args = train_args(data, tmp_path/'two', *extra); two_args[two_args.index('--batch_size') + 1] = '8'
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(free_port()), bin_path(two_args[0])]
    two = run(*two_args[1:], launcher=launcher)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count('best model:') == 1  # rank 0 reports
    h1, h2 = _head(tmp_path/'one'), _head(tmp_path/'two')
    assert all(torch.allclose(h1[k], h2[k], atol=2e-4) for k in h1), max(float((h1[k] - h2[k]).abs().max()) for k in h1)
    # the control: one process with the per-rank batch (other steps) ends elsewhere
    ctl_args = train_args(data, tmp_path/'ctl', *extra); ctl_args[ctl_args.index('--batch_size') + 1] = '8'
    assert run(*ctl_args).returncode == 0
    h3 = _head(tmp_path/'ctl')
    assert max(float((h1[k] - h3[k]).abs().max()) for k in h1) > 1e-2
