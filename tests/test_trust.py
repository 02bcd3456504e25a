"""Results a user can trust (issue 12): one test per way main used to return a wrong answer with exit 0.
Each was run against the code before the fix and failed there; the note on the issue lists how."""
import json, os, subprocess, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import bin_path
from clipnb.synthetic import write_shapes, make_tiny_clip
from clipnb.models import load_model
from clipnb.shapes import shapes_model_path
from clipnb.score import score_pairs

MODEL = str(shapes_model_path())
ENV = dict(os.environ, HF_HUB_OFFLINE='1', TOKENIZERS_PARALLELISM='false')

def run(*args, **kw): return subprocess.run([bin_path(args[0]), *map(str, args[1:])], capture_output=True, text=True, timeout=600, env=ENV, **kw)

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp('trust')
    files = write_shapes(d/'shapes', n_images=24, seed=11)
    return d, files, make_tiny_clip(d/'other-clip', seed=3)

@pytest.fixture(scope='module')
def model(): return load_model(MODEL, device='cpu')

# 1. Stale scores ------------------------------------------------------------------------------------------------------------

def test_rerun_with_other_model_scores_dtype_or_table_is_refused(data, tmp_path):
    d, files, other = data
    base = ['clipnb_score', '--csv_path', files.urls_csv, '--output_dir', tmp_path/'out', '--image_dir', tmp_path/'img', '--device', 'cpu', '--num_workers', 0]
    r = run(*base, '--model_name', MODEL); assert r.returncode == 0, r.stderr[-2000:]
    results = tmp_path/'out'/'similarity_results.csv'
    first = results.read_text()
    for extra, changed in [(['--model_name', other], 'model.'), (['--model_name', MODEL, '--scores', 'cosine'], 'scores:'),
                           (['--model_name', MODEL, '--dtype', 'bf16'], 'dtype:')]:
        r = run(*base, *extra)
        assert r.returncode == 2 and changed in r.stderr and '--overwrite' in r.stderr, (extra, r.returncode, r.stdout, r.stderr[-2000:])
        assert r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr
        assert results.read_text() == first  # the old results are neither reported nor touched
    edited = pd.read_csv(files.urls_csv).assign(caption=lambda t: t.caption.str.upper())
    edited.to_csv(tmp_path/'urls.csv', index=False)
    r = run(*base[:2], tmp_path/'urls.csv', *base[3:], '--model_name', MODEL)
    assert r.returncode == 2 and 'input.digest' in r.stderr, r.stderr[-2000:]
    r = run(*base, '--model_name', other, '--overwrite'); assert r.returncode == 0, r.stderr[-2000:]
    assert results.read_text() != first and 'other-clip' in r.stdout + results.with_name(results.name + '.run.json').read_text()
    r = run(*base, '--model_name', other)  # the same again: complete, said so, not rescored
    assert r.returncode == 0 and 'already complete' in r.stdout
    r = run(*base, '--model_name', MODEL, '--distributed', '--world_size', 2, '--backend', 'gloo')  # refused before any process is spawned
    assert r.returncode == 2 and 'model.' in r.stderr and r.stderr.count('\n') == 1, r.stderr[-2000:]

def test_a_part_made_by_another_model_is_not_resumed(data, model, tmp_path):
    d, files, other = data
    out = tmp_path/'r.csv'
    score_pairs(files.urls_csv, load_model(other, device='cpu'), out, batch_size=8, num_workers=0, progress=False, rank=1, world_size=2, number_sample_per_shard=12)
    with pytest.raises(ValueError, match='was produced by another run'):
        score_pairs(files.urls_csv, model, out, batch_size=8, num_workers=0, progress=False, rank=1, world_size=2, number_sample_per_shard=12)

def test_download_with_another_image_size_is_refused(data, tmp_path):
    d, files, _ = data
    base = ['clipnb_download', '--csv_path', files.urls_csv, '--image_dir', tmp_path/'img']
    assert run(*base).returncode == 0
    r = run(*base, '--image_size', 16)
    assert r.returncode == 2 and 'image_size' in r.stderr and '--force_download' in r.stderr, (r.stdout, r.stderr[-2000:])
    m = pd.read_csv(tmp_path/'img'/'manifest.csv')
    assert set(m.width) == {64}  # the files were not replaced
    assert run(*base, '--image_size', 16, '--force_download').returncode == 0
    assert set(pd.read_csv(tmp_path/'img'/'manifest.csv').width) == {16}

# 2. NaN embeddings --------------------------------------------------------------------------------------------------------------

def test_nan_embeddings_are_an_error_not_perfect_recall():
    from clipnb.retrieval import retrieval_metrics
    img, txt = torch.full((5, 8), float('nan')), torch.nn.functional.normalize(torch.randn(10, 8), dim=-1)
    with pytest.raises(ValueError, match='5 of 5 image embeddings are NaN or infinite'): retrieval_metrics(img, txt, torch.arange(5).repeat_interleave(2))

def test_nan_scores_are_error_rows(data, model, tmp_path):
    import copy
    d, files, _ = data
    nan_model = copy.deepcopy(model)
    with torch.no_grad(): nan_model.model.text_projection.weight.fill_(float('nan'))
    score_pairs(files.urls_csv, nan_model, tmp_path/'r.csv', batch_size=8, num_workers=0, progress=False)
    res = pd.read_csv(tmp_path/'r.csv', keep_default_na=False)
    assert (res.status == 'error').all() and res.error.str.startswith('non_finite').all() and (res.cosine == '').all()

def test_a_diverged_checkpoint_is_never_the_best(data, tmp_path):
    from transformers import AutoModel, AutoProcessor, TrainingArguments
    from clipnb.train import ContrastiveTrainer
    from clipnb.retrieval import load_retrieval_data
    d, files, _ = data
    m = AutoModel.from_pretrained(MODEL)
    with torch.no_grad(): m.visual_projection.weight.fill_(float('nan'))
    args = TrainingArguments(output_dir=str(tmp_path), report_to='none', use_cpu=True, metric_for_best_model='text_to_image_R@5', greater_is_better=True)
    tr = ContrastiveTrainer(model=m, args=args, processing_class=AutoProcessor.from_pretrained(MODEL), eval_pairs=load_retrieval_data(files.hf, 'test'))
    metrics = tr.evaluate()
    assert np.isnan(metrics['eval_text_to_image_R@5']), metrics  # not 1.0
    assert not tr._determine_best_metric(metrics, None)

# 3. Test metrics from training data ---------------------------------------------------------------------------------------------

def test_a_table_without_splits_is_held_out_by_image(data, tmp_path):
    d, files, _ = data
    args = ['clipnb_train_contrastive', '--model_name', MODEL, '--max_steps', 2, '--eval_steps', 2, '--train_bs', 8, '--device', 'cpu']
    r = run(*args, '--dataset', files.tsv, '--output_dir', tmp_path/'run', '--val_frac', 0.25, '--test_frac', 0.25)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path/'run'/'test_metric.json').read_text())
    assert m['n_images'] == 6 and m['n_texts'] == 30  # a quarter of the 24 images, not the training rows
    splits = json.loads((tmp_path/'run'/'train_config.json').read_text())['splits']
    assert [splits[s]['images'] for s in ('train', 'validation', 'test')] == [12, 6, 6]
    (tmp_path/'three.tsv').write_text(''.join(l + '\n' for l in files.tsv.read_text().splitlines()[:3]))
    r = run(*args, '--dataset', tmp_path/'three.tsv', '--output_dir', tmp_path/'run3')
    assert r.returncode == 2 and 'three.tsv: 3 images cannot be split' in r.stderr, r.stderr[-2000:]
    r = run(*args, '--dataset', files.tsv, '--test_dataset', files.tsv, '--output_dir', tmp_path/'run4')
    assert r.returncode == 2 and 'are also training images' in r.stderr, r.stderr[-2000:]

# 4. Crashes after the work is done (the battery of bad input is tests/test_cli_battery.py) --------------------------------------

def test_score_with_clipscore_w_reports_it(data, tmp_path):
    d, files, _ = data
    r = run('clipnb_score', '--csv_path', files.urls_csv, '--output_dir', tmp_path/'o', '--image_dir', tmp_path/'img', '--model_name', MODEL,
            '--device', 'cpu', '--num_workers', 0, '--scores', 'clipscore_w')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'clipscore_w: mean' in r.stdout and json.loads((tmp_path/'o'/'summary.json').read_text())['score'] == 'clipscore_w'

# 5. Fragile resume and merge ----------------------------------------------------------------------------------------------------

def test_a_kill_while_writing_progress_does_not_break_resume(data, model, tmp_path, monkeypatch):
    d, files, _ = data
    score_pairs(files.urls_csv, model, tmp_path/'ref.csv', batch_size=4, num_workers=0, progress=False)
    wt, wb, n = Path.write_text, Path.write_bytes, [0]
    def torn(self, data, *a, **k):  # the third write of a progress file dies half-way, as a killed process would
        if '.progress.json' in self.name:
            n[0] += 1
            if n[0] == 3:
                wb(self, (data.encode() if isinstance(data, str) else data)[:len(data) // 2]); raise KeyboardInterrupt
        return (wt if isinstance(data, str) else wb)(self, data, *a, **k)
    monkeypatch.setattr(Path, 'write_text', torn); monkeypatch.setattr(Path, 'write_bytes', torn)
    with pytest.raises(KeyboardInterrupt): score_pairs(files.urls_csv, model, tmp_path/'r.csv', batch_size=4, num_workers=0, progress=False)
    monkeypatch.undo()
    st = score_pairs(files.urls_csv, model, tmp_path/'r.csv', batch_size=4, num_workers=0, progress=False)
    assert st['resumed_from'] == 8  # the two complete batches before the kill
    from clipnb.testing import assert_same_results
    assert_same_results(tmp_path/'r.csv', tmp_path/'ref.csv')

def test_merge_counts_the_rows_it_joins(data, model, tmp_path):
    d, files, _ = data
    out = tmp_path/'r.csv'
    score_pairs(files.urls_csv, model, out, batch_size=8, num_workers=0, progress=False, rank=1, world_size=2, number_sample_per_shard=12)
    p1 = out.with_name('r.csv.shards')/'00001.csv'
    with open(p1, 'a') as f: f.write(p1.read_text().splitlines(keepends=True)[-1])  # a row written twice
    with pytest.raises(RuntimeError, match="holds 13 rows but shard 1 has 12"):
        score_pairs(files.urls_csv, model, out, batch_size=8, num_workers=0, progress=False, rank=0, world_size=2, number_sample_per_shard=12)
    assert not out.exists() and p1.exists()

def test_a_marker_from_another_run_does_not_start_the_merge(data, model, tmp_path, monkeypatch):
    d, files, other = data
    out = tmp_path/'r.csv'
    score_pairs(files.urls_csv, load_model(other, device='cpu'), out, batch_size=8, num_workers=0, progress=False, rank=1, world_size=2, number_sample_per_shard=12)
    monkeypatch.setenv('CLIPNB_DIST_TIMEOUT', '2')
    with pytest.raises(TimeoutError): score_pairs(files.urls_csv, model, out, batch_size=8, num_workers=0, progress=False, rank=0, world_size=2, number_sample_per_shard=12)
    assert not out.exists()  # nothing merged with the other model's rows

def _barrier_rank(rank, world_size, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    try: from clipnb.dist import init_distributed, barrier
    except ImportError: from clipnb.score import init_distributed; from torch.distributed import barrier
    init_distributed('gloo')
    if rank == 1: time.sleep(5)
    t0 = time.time()
    try: barrier(); res = 'ok'
    except RuntimeError: res = 'timeout'
    Path(out, f'{rank}.txt').write_text(f'{res} {time.time() - t0:.1f}')

def test_one_timeout_for_collectives_and_waits(tmp_path, monkeypatch):
    "CLIPNB_DIST_TIMEOUT governs the process group too: a barrier that waits longer than it fails."
    import socket, torch.multiprocessing as mp
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    monkeypatch.setenv('CLIPNB_DIST_TIMEOUT', '1')
    try: mp.spawn(_barrier_rank, args=(2, port, str(tmp_path)), nprocs=2)
    except Exception: pass  # a rank that timed out may exit with an error
    assert (tmp_path/'0.txt').read_text().startswith('timeout')

# 6. One reader, one vocabulary ---------------------------------------------------------------------------------------------------

def _validate(path):
    try: from clipnb.validate import validate
    except ImportError: from clipnb.data import validate
    return validate(path)

def test_a_headed_tsv_means_the_same_to_every_step(data, model, tmp_path):
    d, files, _ = data
    t = pd.read_csv(files.urls_csv)
    t.to_csv(tmp_path/'pairs.tsv', sep='\t', index=False)
    rep = _validate(tmp_path/'pairs.tsv')
    assert rep.ok and rep.n_rows == len(t), rep
    score_pairs(tmp_path/'pairs.tsv', model, tmp_path/'r.csv', num_workers=0, progress=False)
    res = pd.read_csv(tmp_path/'r.csv')
    assert len(res) == len(t) and (res.status == 'ok').all() and res.caption.tolist() == t.caption.tolist()

def test_local_paths_and_errors_have_one_name_everywhere(data, model, tmp_path):
    from clipnb.download import download_images
    d, files, _ = data
    (tmp_path/'text.png').write_text('not an image')
    (tmp_path/'img').mkdir(); (tmp_path/'img'/'a.png').write_bytes((files.images/'shape_00000.png').read_bytes())
    pd.DataFrame({'url': ['img/a.png', 'img/missing.png', 'text.png'], 'caption': ['a red star', 'a blue box', 'a green disc']}).to_csv(tmp_path/'t.csv', index=False)
    rep = _validate(tmp_path/'t.csv')
    v = {int(r): p for r, p in zip(rep.issues.row, rep.issues.problem) if pd.notna(r)}
    m = download_images(tmp_path/'t.csv', tmp_path/'dl', progress=False).manifest
    dl = {i: e.split(':')[0] for i, e in enumerate(m.error) if e}
    score_pairs(tmp_path/'t.csv', model, tmp_path/'r.csv', num_workers=0, progress=False)
    res = pd.read_csv(tmp_path/'r.csv', keep_default_na=False)
    sc = {i: e.split(':')[0] for i, e in enumerate(res.error) if e}
    assert v == dl == sc == {1: 'missing_image', 2: 'not_image'}, (v, dl, sc)  # a local path in a url column is a file to all three
