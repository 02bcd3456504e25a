"""Scoring end to end: exactly-once sharding (gloo on CPU, spawned and torchrun), kill-and-resume, http downloads with
failures, flat memory, and the clipnb_score / clipnb_demo commands as subprocesses."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from conftest import bin_path
from clipnb.synthetic import write_shapes
from clipnb.models import load_model
from clipnb.shapes import shapes_model_path
from clipnb.score import score_pairs, shard_part, shard_dir
from clipnb.stream import my_shards
from clipnb.testing import assert_same_results

MODEL = str(shapes_model_path())

@pytest.fixture(scope='module')
def model(): return load_model(MODEL, device='cpu')

@pytest.fixture(scope='module')
def table(tmp_path_factory):
    "101 rows: repeated images and captions, one missing file, one non-image."
    d = tmp_path_factory.mktemp('tbl')
    f = write_shapes(d/'s', n_images=40, seed=7)
    df = pd.read_csv(f.urls_csv)
    df = pd.concat([df, df.sample(59, random_state=1, replace=True)], ignore_index=True)
    df.loc[10, 'url'] = (d/'missing.png').as_uri()
    (d/'bad.png').write_bytes(b'not an image')
    df.loc[50, 'url'] = (d/'bad.png').as_uri()
    assert len(df) == 99
    df = pd.concat([df, df.iloc[:2]], ignore_index=True)
    df.to_csv(d/'pairs.csv', index=False)
    return d/'pairs.csv'

@pytest.fixture(scope='module')
def single(table, model, tmp_path_factory):
    out = tmp_path_factory.mktemp('single')/'r.csv'
    score_pairs(table, model, out, batch_size=16, num_workers=0, progress=False)
    return out

def test_single_process_accounts_for_every_row(table, single):
    inp, res = pd.read_csv(table), pd.read_csv(single)
    assert len(res) == len(inp) == 101 and res[inp.columns].equals(inp)
    assert res.status.value_counts().to_dict() == {'ok': 99, 'error': 2}
    assert res.error[10].startswith('missing_image') and res.error[50].startswith('not_image')

@pytest.mark.parametrize('n,world,rows', [(1, 2, 10), (2, 3, 1), (5, 3, 2), (101, 2, 10), (101, 4, 30)])
def test_shards_by_flag_are_exactly_once(table, single, model, tmp_path, n, world, rows):
    src = tmp_path/'t.csv'; pd.read_csv(table).head(n).to_csv(src, index=False)
    out = tmp_path/'r.csv'
    n_shards = -(-n // rows)
    for rank in reversed(range(world)):  # rank 0 last: it merges once all shards are done
        st = score_pairs(src, model, out, batch_size=8, num_workers=0, progress=False, rank=rank, world_size=world, number_sample_per_shard=rows)
        assert st['shards'] == n_shards and st['my_shards'] == len(my_shards(n_shards, rank, world))
        assert st['encoded_texts'] <= sum(min(rows, n - k * rows) for k in my_shards(n_shards, rank, world))
    assert_same_results(out, pd.read_csv(single, dtype=str, keep_default_na=False).head(n))
    assert not shard_dir(out).exists()

@pytest.mark.parametrize('workers', [0, 2])
def test_pixels_normalised_in_workers_or_after_give_the_same_scores(table, single, model, tmp_path, workers):
    "uint8 from the workers (PixelSplit, the default) and float32 from the workers score alike, broken images included."
    a = score_pairs(table, model, tmp_path/'a.csv', batch_size=16, num_workers=workers, progress=False)
    b = score_pairs(table, model, tmp_path/'b.csv', batch_size=16, num_workers=workers, progress=False, pixels_on_device=False)
    assert a['pixels_on_device'] and not b['pixels_on_device']
    assert_same_results(tmp_path/'a.csv', tmp_path/'b.csv')
    assert_same_results(tmp_path/'a.csv', single)

def test_embedded_dataset_images_shard_and_resume_like_files(tmp_path, model):
    "A datasets-backed PairTable: two ranks by flag equal one process, and a rerun of a complete part is not redone."
    from clipnb.data import load_hf_pairs
    hf = load_hf_pairs(write_shapes(tmp_path/'s', n_images=30, seed=9).hf, split='train')
    one = score_pairs(hf, model, tmp_path/'one.csv', batch_size=8, num_workers=2, progress=False)
    assert one['rows'] == len(hf) and one['encoded_images'] == hf.n_images
    for rank in (1, 0):
        score_pairs(hf, model, tmp_path/'two.csv', batch_size=8, num_workers=0, progress=False, rank=rank, world_size=2)
    assert_same_results(tmp_path/'two.csv', tmp_path/'one.csv')
    res = pd.read_csv(tmp_path/'one.csv')
    assert (res.status == 'ok').all() and res.image_id.tolist() == hf.df.image_id.tolist()
    assert score_pairs(hf, model, tmp_path/'one.csv', progress=False).get('complete')
    from clipnb.report import write_report
    from clipnb.profile import profile_stages
    paths = write_report(tmp_path/'one.csv', hf, tmp_path/'report', model, 'cosine')
    assert all(paths[k].stat().st_size > 5000 for k in ('gallery', 'heatmap', 'report'))
    prof = profile_stages(hf, model, batch_size=8, n_batches=2)
    assert len(prof) == 2 and (prof.decode > 0).all()

def _score_cmd(*args): return [bin_path('clipnb_score'), '--model_name', MODEL, '--device', 'cpu', '--num_workers', '0', *map(str, args)]

def test_spawned_gloo_ranks_equal_single(table, single, tmp_path):
    r = subprocess.run(_score_cmd('--csv_path', table, '--output_dir', tmp_path/'o', '--image_dir', tmp_path/'img',
                                  '--distributed', '--world_size', 2, '--backend', 'gloo', '--batch_size', 16),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '101 pairs: 99 scored, 2 errors' in r.stdout
    res = pd.read_csv(tmp_path/'o'/'similarity_results.csv', dtype=str, keep_default_na=False)
    ref = pd.read_csv(single, dtype=str, keep_default_na=False)
    cols = [c for c in ref.columns if c != 'error']
    assert_same_results(res[cols], ref[cols])  # scored from downloaded copies: same scores, rows and statuses
    assert res.download_error[10].startswith('missing_image') and res.error[10].startswith('not_downloaded: missing_image')

def test_torchrun_gloo_equals_single(table, single, tmp_path):
    # image_path table: no download step, so the ranks only score
    inp = pd.read_csv(table)
    t = inp.assign(image_path=[u.replace('file://', '') for u in inp.url])
    t.to_csv(tmp_path/'paths.csv', index=False)
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--no-python',
                        *_score_cmd('--csv_path', tmp_path/'paths.csv', '--output_dir', tmp_path/'o', '--backend', 'gloo', '--batch_size', 16)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = pd.read_csv(tmp_path/'o'/'similarity_results.csv', dtype=str, keep_default_na=False)
    ref = pd.read_csv(single, dtype=str, keep_default_na=False)
    assert res.url.tolist() == ref.url.tolist() and len(res) == 101
    assert_same_results(res[ref.columns], ref)

def test_killed_run_resumes(tmp_path, model):
    f = write_shapes(tmp_path/'s', n_images=600, seed=8)
    ref = tmp_path/'ref.csv'
    score_pairs(f.urls_csv, model, ref, batch_size=8, num_workers=0, progress=False)
    out = tmp_path/'r.csv'
    code = ("import sys; from clipnb.models import load_model; from clipnb.score import score_pairs; "
            f"score_pairs({str(f.urls_csv)!r}, load_model({MODEL!r}, device='cpu'), {str(out)!r}, batch_size=8, num_workers=0, progress=False)")
    p = subprocess.Popen([sys.executable, '-c', code], start_new_session=True)
    prog = shard_part(out, 0).with_name(shard_part(out, 0).name + '.progress.json')
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        if prog.exists():
            try:
                if json.loads(prog.read_text())['rows'] >= 100: break
            except (json.JSONDecodeError, KeyError): pass
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    done = json.loads(prog.read_text())['rows']
    assert 100 <= done < 600 and not out.exists()
    with open(shard_part(out, 0), 'a') as fh: fh.write('file:///torn,half a ro')  # a torn line, as a kill mid-write leaves
    st = score_pairs(f.urls_csv, model, out, batch_size=8, num_workers=0, progress=False)
    assert st['resumed_from'] == done and st['encoded_images'] <= 600 - done + 8
    assert_same_results(out, ref)
    res = pd.read_csv(out)
    assert len(res) == 600 and res.image_id.is_unique  # every row once, no duplicates
    assert score_pairs(f.urls_csv, model, out, progress=False).get('complete')  # a complete run is not redone

def test_embeddings_are_freed_after_their_last_row(tmp_path, model):
    "Memory stays flat: with no repeats, at most a batch of image embeddings is held at once; with repeats, until their last row."
    f = write_shapes(tmp_path/'s', n_images=200, seed=9)
    st = score_pairs(f.urls_csv, model, tmp_path/'r.csv', batch_size=16, num_workers=0, progress=False)
    assert 0 < st['max_cached_images'] <= 16, st
    df = pd.read_csv(f.urls_csv)
    pd.concat([df, df.head(1)], ignore_index=True).to_csv(tmp_path/'rep.csv', index=False)  # image 0 is needed again in the last row
    st = score_pairs(tmp_path/'rep.csv', model, tmp_path/'r2.csv', batch_size=16, num_workers=0, progress=False)
    assert st['max_cached_images'] <= 17 and st['encoded_images'] == 200

def test_http_urls_are_downloaded_and_failures_kept(tmp_path):
    from clipnb.testing import ImageServer
    f = write_shapes(tmp_path/'s', n_images=12, seed=10)
    df = pd.read_csv(f.urls_csv)
    with ImageServer() as srv:
        df['url'] = [srv.url(f'img/{i}.jpg') for i in range(len(df))]
        df.loc[3, 'url'] = srv.url('status/404')
        df.loc[7, 'url'] = srv.url('html')
        df.to_csv(tmp_path/'http.csv', index=False)
        r = subprocess.run(_score_cmd('--csv_path', tmp_path/'http.csv', '--output_dir', tmp_path/'o', '--image_dir', tmp_path/'img',
                                      '--max_workers', 4, '--timeout', 5, '--results_file', 'scores.csv'),
                           capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = pd.read_csv(tmp_path/'o'/'scores.csv', keep_default_na=False)
    assert len(res) == 12 and res.url.tolist() == df.url.tolist()
    assert res.status.tolist() == ['error' if i in (3, 7) else 'ok' for i in range(12)]
    assert res.download_error[3].startswith('http_404') and res.download_error[7].startswith('not_image')
    assert (tmp_path/'img'/'manifest.csv').exists() and (tmp_path/'o'/'report.html').exists()

def test_bad_input_exits_2_naming_the_file(tmp_path):
    (tmp_path/'nocap.csv').write_text('url,x\nfile:///a.png,1\n')
    r = subprocess.run(_score_cmd('--csv_path', tmp_path/'nocap.csv', '--output_dir', tmp_path/'o'), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'nocap.csv' in r.stderr and 'no text' in r.stderr, r.stderr
    r = subprocess.run(_score_cmd('--csv_path', tmp_path/'absent.csv'), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'absent.csv' in r.stderr

def test_demo(tmp_path):
    r = subprocess.run([bin_path('clipnb_demo'), '--output_dir', str(tmp_path/'demo')], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'AUROC' in r.stdout and 'matched mean' in r.stdout
    d = json.loads((tmp_path/'demo'/'demo.json').read_text())
    assert d['n_pairs'] == 60 and d['auroc'] > 0.95 and d['cosine_mean_matched'] > d['cosine_mean_mismatched'] + 0.3
    for f in ('similarity_results.csv', 'summary.json', 'report.html', 'similarity_distribution.png', 'similarity_heatmap.png', 'gallery.png'):
        assert (tmp_path/'demo'/f).exists(), f

def test_a_shard_that_fails_to_read_stops_the_job_when_reached_and_the_rerun_resumes(table, single, model, tmp_path, monkeypatch):
    """The feed reads shard k+1 while shard k is scored: an error reading shard 2 (here its rows change under the run) must not
    cut shard 1 short. Shards 0 and 1 finish and are marked, the error names shard 2, and the rerun scores shards 2 to 5 only."""
    import clipnb.score as sc
    real = sc.iter_pairs
    def changing(*a, **kw):
        for k, pt in enumerate(real(*a, **kw)):
            if k == 2: pt.df.loc[pt.df.index[0], 'text'] = 'changed under the run'
            yield pt
    monkeypatch.setattr(sc, 'iter_pairs', changing)
    out = tmp_path/'r.csv'
    with pytest.raises(sc.StaleOutputError, match=r'changed while it was being scored \(shard 2\)'):
        score_pairs(table, model, out, batch_size=8, num_workers=2, progress=False, number_sample_per_shard=20)
    assert sorted(p.name for p in shard_dir(out).glob('*.done')) == ['00000.done', '00001.done']
    assert len(pd.read_csv(shard_part(out, 1))) == 20  # shard 1 whole, though shard 2 was read while it was scored
    monkeypatch.setattr(sc, 'iter_pairs', real)
    st = score_pairs(table, model, out, batch_size=8, num_workers=2, progress=False, number_sample_per_shard=20)
    assert (st['shards'], st['skipped_shards'], st['worker_starts']) == (6, 2, 2)
    assert_same_results(out, single)
