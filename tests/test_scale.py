"""Scale: WebDataset and Parquet round trips (download -> score -> curate, every row accounted for, keys stable on rerun) through the
commands, the Ray engine in local mode with two workers, a Slurm array job's shards, and memory that does not grow with the table."""
import json, os, subprocess, sys, tarfile
from pathlib import Path
import pandas as pd
import pytest
from conftest import bin_path, OFFLINE_ENV
from clipnb.shapes import shapes_model_path
from clipnb.stream import iter_pairs
from clipnb.score import iter_results
from clipnb.testing import ImageServer

MODEL = str(shapes_model_path())

def run(cmd, *args, env=None):
    r = subprocess.run([bin_path(cmd), *map(str, args)], capture_output=True, text=True, timeout=600, env=env or OFFLINE_ENV)
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-3000:])
    return r.stdout

@pytest.fixture(scope='module')
def urls(tmp_path_factory):
    d = tmp_path_factory.mktemp('scale')
    with ImageServer() as srv:
        u = [srv.url(f'img/{i}.jpg') for i in range(40)]
        u[7], u[31] = srv.url('status/404'), srv.url('html')
        pd.DataFrame(dict(url=u, caption=[f'photo number {i}' for i in range(40)], source=['a' if i % 2 else 'b' for i in range(40)])).to_csv(d/'urls.csv', index=False)
        yield d, srv

def _status(d): return pd.concat([pd.read_parquet(p) for p in sorted(Path(d).glob('*.parquet'))], ignore_index=True)

def test_webdataset_round_trip_accounts_for_every_row(urls, tmp_path):
    d, srv = urls
    run('clipnb_download', '--csv_path', d/'urls.csv', '--output_dir', tmp_path/'wds', '--output_format', 'webdataset', '--number_sample_per_shard', 16)
    st = _status(tmp_path/'wds')
    assert len(st) == 40 and st.download_status.value_counts().to_dict() == {'ok': 38, 'error': 2}
    assert sorted(p.name for p in (tmp_path/'wds').glob('*.tar')) == ['00000.tar', '00001.tar', '00002.tar']
    # keys are stable: a second download into another folder gives the same keys for the same rows
    run('clipnb_download', '--csv_path', d/'urls.csv', '--output_dir', tmp_path/'wds2', '--output_format', 'webdataset', '--number_sample_per_shard', 16)
    assert _status(tmp_path/'wds2').key.tolist() == st.key.tolist()
    with tarfile.open(tmp_path/'wds'/'00001.tar') as a, tarfile.open(tmp_path/'wds2'/'00001.tar') as b: assert a.getnames() == b.getnames()
    out = run('clipnb_score', '--csv_path', tmp_path/'wds', '--model_name', MODEL, '--device', 'cpu', '--num_workers', 0, '--output_dir', tmp_path/'s',
              '--output_format', 'parquet', '--number_sample_per_shard', 16)
    assert '38 pairs: 38 scored, 0 errors' in out
    res = pd.concat(iter_results(tmp_path/'s'/'similarity_results'), ignore_index=True)
    assert res.key.tolist() == st.key[st.download_status == 'ok'].tolist()
    run('clipnb_curate', '--results', tmp_path/'s'/'similarity_results', '--csv_path', tmp_path/'wds', '--output_dir', tmp_path/'c',
        '--top_fraction', 0.5, '--group_col', 'source', '--number_sample_per_shard', 16)
    rep = json.loads((tmp_path/'c'/'curate_report.json').read_text())
    kept = pd.concat([pt.raw for pt in iter_pairs(tmp_path/'c')], ignore_index=True)
    dropped = pd.read_csv(tmp_path/'c'/'dropped.csv')
    assert len(kept) + len(dropped) == 38 == rep['counts']['rows'] and len(kept) == rep['counts']['kept']
    assert sorted(kept.key.tolist() + res.key[dropped.row].tolist()) == sorted(res.key.tolist())  # each row once, kept or dropped
    assert set(kept.source) == {'a', 'b'} and 16 <= len(kept) <= 22  # about half of each source

def test_parquet_round_trip_keeps_download_errors(urls, tmp_path):
    d, srv = urls
    run('clipnb_download', '--csv_path', d/'urls.csv', '--output_dir', tmp_path/'pq', '--output_format', 'parquet', '--number_sample_per_shard', 25)
    st = _status(tmp_path/'pq')
    assert len(st) == 40 and st.image.isna().sum() == 2
    run('clipnb_score', '--csv_path', tmp_path/'pq', '--model_name', MODEL, '--device', 'cpu', '--num_workers', 0, '--output_dir', tmp_path/'s')
    res = pd.read_csv(tmp_path/'s'/'similarity_results.csv', keep_default_na=False, dtype={'key': str})
    assert len(res) == 40 and res.status.tolist().count('error') == 2
    assert res.error[7].startswith('not_downloaded: http_404') and res.key.tolist() == st.key.tolist()
    run('clipnb_curate', '--results', tmp_path/'s'/'similarity_results.csv', '--csv_path', tmp_path/'pq', '--output_dir', tmp_path/'c', '--min_score', -1)
    kept = pd.read_parquet(tmp_path/'c'/'00000.parquet')
    assert kept.image.notna().all() and len(pd.concat([kept, pd.read_parquet(tmp_path/'c'/'00001.parquet')])) == 38
    assert pd.read_csv(tmp_path/'c'/'dropped.csv').reason.tolist() == ['error', 'error']

def test_ray_workers_make_the_shards_one_process_makes(urls, tmp_path):
    pytest.importorskip('ray')
    d, srv = urls
    from clipnb.shards import download_shards
    one = download_shards(d/'urls.csv', tmp_path/'one', number_sample_per_shard=10, max_workers=4, progress=False)
    r = run('clipnb_download', '--csv_path', d/'urls.csv', '--output_dir', tmp_path/'ray', '--output_format', 'webdataset', '--number_sample_per_shard', 10,
            '--engine', 'ray', '--workers', 2, '--max_workers', 4)
    assert '4 shards (0 already done): 40 rows' in r
    pd.testing.assert_frame_equal(_status(tmp_path/'ray').drop(columns='bytes'), _status(tmp_path/'one').drop(columns='bytes'))
    for k in range(4):
        with tarfile.open(tmp_path/'ray'/f'{k:05d}.tar') as a, tarfile.open(tmp_path/'one'/f'{k:05d}.tar') as b:
            assert a.getnames() == b.getnames() and [a.extractfile(m).read() for m in a] == [b.extractfile(m).read() for m in b]
    stats = [json.loads((tmp_path/'ray'/f'{k:05d}_stats.json').read_text()) for k in range(4)]
    assert sum(s['rows'] for s in stats) == 40 and one['samples'] == 38

def test_ray_tasks_start_with_the_arena_cap():
    "Ray's workers are not a command's processes: run_shards starts its tasks with MALLOC_ARENA_MAX (2, or the driver's own value)."
    pytest.importorskip('ray')
    from clipnb.stream import run_shards
    assert 'MALLOC_ARENA_MAX' not in os.environ  # what the tasks see comes from run_shards, not from this process
    assert run_shards(os.getenv, ['MALLOC_ARENA_MAX'] * 2, engine='ray', workers=2) == ['2', '2']  # os.getenv(shard): importable on any worker

def test_a_slurm_array_job_runs_each_shard_once(urls, tmp_path):
    d, srv = urls
    for task in (1, 2, 3):  # --array=1-3: three tasks, each its own process
        env = dict(OFFLINE_ENV, SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_MIN='1', SLURM_ARRAY_TASK_COUNT='3')
        run('clipnb_download', '--csv_path', d/'urls.csv', '--output_dir', tmp_path/'arr', '--output_format', 'webdataset', '--number_sample_per_shard', 10, env=env)
    stats = sorted(json.loads(p.read_text())['shard'] for p in (tmp_path/'arr').glob('*_stats.json'))
    assert stats == [0, 1, 2, 3] and len(_status(tmp_path/'arr')) == 40

def test_scoring_and_download_give_memory_back_after_each_shard(urls, tmp_path, monkeypatch):
    "score_pairs and download_images call trim_malloc once a shard is done, once per shard (the bench measures what that does to the peak)."
    import clipnb.score, clipnb.download
    from clipnb.models import load_model
    calls = []
    monkeypatch.setattr(clipnb.download, 'trim_malloc', lambda: calls.append('download') or True)
    monkeypatch.setattr(clipnb.score, 'trim_malloc', lambda: calls.append('score') or True)
    d, srv = urls
    clipnb.download.download_images(d/'urls.csv', tmp_path/'img', max_workers=4, progress=False, shard_rows=16)  # 40 rows: shards of 16, 16, 8
    assert calls == ['download'] * 3, calls
    man = pd.read_csv(tmp_path/'img'/'manifest.csv')
    ok = man[man.status == 'ok']  # image paths are relative to the manifest's folder: the table goes there
    pd.DataFrame(dict(image_path=ok.image_path, caption=ok.caption)).to_csv(tmp_path/'img'/'pairs.csv', index=False)
    st = clipnb.score.score_pairs(tmp_path/'img'/'pairs.csv', load_model(MODEL, device='cpu'), tmp_path/'res.csv', num_workers=0, progress=False, number_sample_per_shard=16)
    assert st['shards'] == 3 and calls == ['download'] * 3 + ['score'] * 3, (st, calls)

def test_scoring_memory_does_not_grow_with_the_table(tmp_path):
    "Scaled down from bench_scale: peak RSS of clipnb_score at 40,000 rows within 10% of 4,000 (shards of 2,000); the control, one 40,000-row shard, is not."
    from clipnb.synthetic import write_shapes
    from clipnb.bench import peak_rss
    write_shapes(tmp_path/'s', n_images=50, seed=4)
    imgs = sorted((tmp_path/'s'/'images').glob('*'))
    meta = 'x' * 2000  # each row carries 2 KB of metadata (LAION's EXIF column is one) that the results keep: a whole-table shard holds 80 MB of it at once
    peaks = {}
    for n, shard in ((4000, 2000), (40000, 2000), (40001, 40001)):  # the last: the whole table one shard, as before shards (the control)
        f = tmp_path/f'p{n}.csv'
        pd.DataFrame(dict(image_path=[str(imgs[i % 50]) for i in range(n)], caption=[f'a picture number {i} of a shape' for i in range(n)],
                          exif=[f'{i}:{meta}' for i in range(n)])).to_csv(f, index=False)
        peaks[n] = peak_rss([bin_path('clipnb_score'), '--csv_path', f, '--model_name', MODEL, '--device', 'cpu', '--num_workers', '0', '--batch_size', '256',
                             '--output_dir', tmp_path/f'o{n}', '--number_sample_per_shard', str(shard)], OFFLINE_ENV)['peak_rss_mib']
    assert peaks[40000] <= 1.10 * peaks[4000], peaks
    assert peaks[40001] > 1.10 * peaks[4000], peaks  # the test sees growth where there is some
