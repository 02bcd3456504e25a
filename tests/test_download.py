"""The downloader against a real HTTP server on 127.0.0.1 (`ImageServer`, its own process): every fault route,
kill-and-resume, duplicate URLs, sharding by rank (flags and torchrun), the CLI, and bad input."""
import io, json, os, signal, subprocess, sys, time
from collections import Counter
from pathlib import Path
import pandas as pd
import pytest
from PIL import Image
from conftest import bin_path
from clipnb.download import download_images, journal_path, read_journals
from clipnb.fetch import url_key
from clipnb.images import check_image
from clipnb.testing import ImageServer, server_jpeg

@pytest.fixture(scope='module')
def srv():
    with ImageServer() as s: yield s

def write_csv(path, urls, **cols):
    pd.DataFrame({'url': urls, 'caption': [f'caption {i}' for i in range(len(urls))], **cols}).to_csv(path, index=False)
    return path

def files_under(d:Path):
    "Every file under the image folder except the manifest and its stats."
    return sorted(p.relative_to(d).as_posix() for p in d.rglob('*') if p.is_file() and not p.name.startswith('manifest'))

# route -> (status, error kind, attempts made with retries=2)
FAULTS = {
    'img/{i}.jpg': ('ok', '', 1),
    'status/404?{i}': ('error', 'http_404', 1),
    'status/410?{i}': ('error', 'http_410', 1),
    'status/403?{i}': ('error', 'http_403', 1),
    'status/500?{i}': ('error', 'http_500', 3),
    'status/502?{i}': ('error', 'http_502', 3),
    'flaky/2/{i}.jpg': ('ok', '', 3),
    'throttle/429/1/1/{i}.jpg': ('ok', '', 2),
    'throttle/503/1/1/{i}.jpg': ('ok', '', 2),
    'drop/1/{i}.jpg': ('ok', '', 2),
    'redirect/3/{i}.jpg': ('ok', '', 1),
    'loop?{i}': ('error', 'too_many_redirects', 1),
    'html?{i}': ('error', 'not_image', 1),
    'empty?{i}': ('error', 'empty', 1),
    'truncated/{i}.jpg': ('error', 'bad_image', 1),
    'corrupt/{i}.jpg': ('error', 'bad_image', 1),
    'bomb/30000.png?{i}': ('error', 'too_many_pixels', 1),
    'huge?{i}': ('error', 'too_large', 1),
    'endless?{i}': ('error', 'too_large', 1),
    'slow/5/{i}.jpg': ('error', 'timeout', 3),
    'drip/{i}.jpg': ('error', 'timeout', 3),
}

def test_fault_battery(srv, tmp_path):
    routes = list(FAULTS)
    urls = [srv.url(r.format(i=1000 + j)) for j, r in enumerate(routes)]
    local = tmp_path/'local.jpg'; local.write_bytes(server_jpeg(7))
    extra = {local.as_uri(): ('ok', ''), str(local): ('ok', ''), 'local.jpg': ('ok', ''), (tmp_path/'nope.jpg').as_uri(): ('error', 'missing_image'),
             'ftp://example.com/a.jpg': ('error', 'unsupported_scheme'), 'http://': ('error', 'bad_url'),
             'http://exa mple.com/a.jpg': ('error', 'bad_url'), '': ('error', 'no_image')}
    write_csv(tmp_path/'urls.csv', urls + list(extra))
    before = srv.hits()
    t0 = time.monotonic()
    r = download_images(tmp_path/'urls.csv', tmp_path/'images', max_workers=32, timeout=1.5, retries=2, backoff=0.05,
                        max_bytes=2 * 2**20, max_pixels=50_000_000, progress=False)
    m = r.manifest
    assert len(m) == len(urls) + len(extra) and m.caption.tolist() == [f'caption {i}' for i in range(len(m))]
    hits = srv.hits() - before
    for j, route in enumerate(routes):
        status, kind, attempts = FAULTS[route]
        row = m.iloc[j]
        assert (row.status, row.error.split(':')[0]) == (status, kind), (route, row.error)
        assert row.attempts == attempts, (route, row.attempts)
        if route.startswith(('status', 'flaky', 'throttle', 'slow', 'drip', 'html', 'empty', 'img')):
            assert hits['/' + route.format(i=1000 + j)] == attempts, route  # what the server saw: 4xx never retried
        if status == 'ok':
            im = Image.open(tmp_path/'images'/row.image_path); im.load()
            assert im.size == (320, 240) and (row.width, row.height) == (320, 240) and row.http_status == 200
    for j, (url, (status, kind)) in enumerate(extra.items(), start=len(routes)):
        row = m.iloc[j]
        assert (row.status, row.error.split(':')[0]) == (status, kind), (url, row.error)
    # Retry-After of 1 s was honoured: the throttled rows cannot finish before it
    assert time.monotonic() - t0 >= 1
    # every saved file is an image under its final name; nothing partial is left anywhere
    assert files_under(tmp_path/'images') == sorted(m.image_path[m.status == 'ok'].unique())
    for p in m.image_path[m.status == 'ok']: check_image((tmp_path/'images'/p).read_bytes())
    st = json.loads((tmp_path/'images'/'manifest_stats.json').read_text())
    assert st['rows'] == len(m) and st['status'] == m.status.value_counts().to_dict()
    assert st['errors']['timeout'] == 2 and st['errors']['bad_image'] == 2

def test_duplicates_fetched_once_and_rerun_resumes(srv, tmp_path):
    urls = [srv.url(f'img/{i % 5}.jpg?dup') for i in range(12)] + [srv.url('status/404?dup')]
    write_csv(tmp_path/'urls.csv', urls)
    before = srv.hits()
    r = download_images(tmp_path/'urls.csv', tmp_path/'images', max_workers=8, progress=False)
    hits = srv.hits() - before
    assert all(hits[f'/img/{i}.jpg?dup'] == 1 for i in range(5)) and r.stats['duplicate_rows'] == 7
    assert r.manifest.status.tolist() == ['ok'] * 12 + ['error'] and r.manifest.image_path[0] == r.manifest.image_path[5]
    # rerun: nothing ok is fetched again; the failed row is retried
    before = srv.hits()
    r2 = download_images(tmp_path/'urls.csv', tmp_path/'images', max_workers=8, progress=False)
    assert srv.hits() - before == Counter({'/status/404?dup': 1})
    assert r2.manifest.drop(columns='attempts').equals(r.manifest.drop(columns='attempts'))
    # a deleted file is fetched again; --force_download fetches everything
    (tmp_path/'images'/r.manifest.image_path[1]).unlink()
    before = srv.hits()
    download_images(tmp_path/'urls.csv', tmp_path/'images', progress=False)
    assert srv.hits() - before == Counter({'/img/1.jpg?dup': 1, '/status/404?dup': 1})
    before = srv.hits()
    download_images(tmp_path/'urls.csv', tmp_path/'images', force_download=True, progress=False)
    assert sum((srv.hits() - before).values()) == 6

def test_resize_keeps_aspect(srv, tmp_path):
    write_csv(tmp_path/'urls.csv', [srv.url(f'img/{i}.jpg?rs') for i in range(3)])
    r = download_images(tmp_path/'urls.csv', tmp_path/'images', image_size=120, progress=False)
    for p in r.manifest.image_path: assert Image.open(tmp_path/'images'/p).size == (160, 120)
    assert (r.manifest.width.tolist(), r.manifest.height.tolist()) == ([160] * 3, [120] * 3)

def test_bad_input_is_named(tmp_path):
    (tmp_path/'nourl.csv').write_text('caption,path\na,b\n')
    with pytest.raises(Exception, match='nourl.csv') as e: download_images(tmp_path/'nourl.csv', tmp_path/'images', progress=False)
    assert 'caption' in str(e.value)  # the columns it found
    with pytest.raises(Exception, match='missing.csv'): download_images(tmp_path/'missing.csv', tmp_path/'images', progress=False)

def cli(*args, **kw):
    return subprocess.run([bin_path('clipnb_download'), *map(str, args)], capture_output=True, text=True, timeout=300, **kw)

def test_cli(srv, tmp_path):
    write_csv(tmp_path/'urls.csv', [srv.url(f'img/{i}.jpg?cli') for i in range(5)] + ['gopher://x/y.jpg'])
    r = cli('--csv_path', tmp_path/'urls.csv', '--image_dir', tmp_path/'images', '--max_workers', 4, '--timeout', 5, '--retries', 1,
            '--manifest', tmp_path/'m.csv', '--image_size', 64, '--log_level', 'INFO')
    assert r.returncode == 0, r.stderr
    assert '6 rows: 5 ok, 1 error' in r.stdout and 'unsupported_scheme 1' in r.stdout
    m = pd.read_csv(tmp_path/'m.csv')
    assert m.status.tolist() == ['ok'] * 5 + ['error'] and (m.height[:5] == 64).all()
    assert (tmp_path/'m_stats.json').exists() and 'INFO' in r.stderr  # the log goes to stderr
    r = cli('--csv_path', tmp_path/'urls.csv', '--image_dir', tmp_path/'images', '--manifest', tmp_path/'m.csv', '--image_size', 64)
    assert '5 already downloaded' in r.stdout
    r = cli('--csv_path', tmp_path/'urls.csv', '--image_dir', tmp_path/'images', '--manifest', tmp_path/'m.csv')  # files of another size
    assert r.returncode == 2 and '(image_size: 64 → None)' in r.stderr
    r = cli('--csv_path', tmp_path/'absent.csv')
    assert r.returncode == 2 and 'absent.csv' in r.stderr
    r = cli('--help'); assert r.returncode == 0 and '--force_download' in r.stdout and '--max_workers' in r.stdout

def test_killed_run_resumes_exactly(tmp_path):
    "SIGKILL part-way, then rerun: every row once, no partial files, no good URL fetched twice except the ones in flight."
    n, workers = 400, 8
    with ImageServer(latency=0.05) as s:
        urls = [s.url(f'img/{i}.jpg') for i in range(n)]
        urls[10] = urls[3]  # a duplicate
        write_csv(tmp_path/'urls.csv', urls)
        args = ['--csv_path', tmp_path/'urls.csv', '--image_dir', tmp_path/'images', '--max_workers', workers, '--max_per_host', workers]
        p = subprocess.Popen([bin_path('clipnb_download'), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        journal = journal_path(tmp_path/'images'/'manifest.csv')
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            if journal.exists() and journal.read_text().count('\n') >= 100: break
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGKILL); p.wait()
        recs = read_journals(tmp_path/'images'/'manifest.csv')
        assert 100 <= len(recs) < n and not (tmp_path/'images'/'manifest.csv').exists()
        done_ok = {r['url'] for r in recs if r['status'] == 'ok'}
        # files under final names are complete images; partial downloads can only be under .tmp
        for f in (tmp_path/'images').rglob('*.jpg'):
            if '.tmp' not in f.parts: check_image(f.read_bytes())
        hits1 = s.hits()
        r = cli(*args)
        assert r.returncode == 0, r.stderr
        hits2 = s.hits() - hits1
    m = pd.read_csv(tmp_path/'images'/'manifest.csv')
    assert len(m) == n and m.url.tolist() == urls and m.caption.tolist() == [f'caption {i}' for i in range(n)]
    assert (m.status == 'ok').all()
    assert files_under(tmp_path/'images') == sorted(m.image_path.unique())  # no partial or stray files, .tmp removed
    path = lambda u: '/' + u.split('/', 3)[3]
    assert not any(hits2[path(u)] for u in done_ok)  # finished before the kill: not fetched again
    twice = [u for u in set(urls) if hits1[path(u)] + hits2[path(u)] > 1]
    assert len(twice) <= workers, twice  # only the ones in flight at the kill
    assert all(hits1[path(u)] + hits2[path(u)] >= 1 for u in urls)
    assert not list((tmp_path/'images').glob('manifest.csv.part-*'))

def _sharded_equals_single(tmp_path, launch):
    with ImageServer() as s:
        urls = [s.url(f'img/{i}.jpg') for i in range(40)] + [s.url('status/404'), s.url('html'), 'ftp://x/y.jpg']
        urls[5] = urls[20]
        write_csv(tmp_path/'urls.csv', urls)
        assert cli('--csv_path', tmp_path/'urls.csv', '--image_dir', tmp_path/'single').returncode == 0
        procs = launch(['--csv_path', str(tmp_path/'urls.csv'), '--image_dir', str(tmp_path/'multi')])
    single, multi = pd.read_csv(tmp_path/'single'/'manifest.csv'), pd.read_csv(tmp_path/'multi'/'manifest.csv')
    pd.testing.assert_frame_equal(single, multi)
    st = json.loads((tmp_path/'multi'/'manifest_stats.json').read_text())
    assert [r['rank'] for r in st['ranks']] == [0, 1] and sum(r['rows'] for r in st['ranks']) == len(urls)
    assert st['ranks'][0]['rows'] > 0 and st['ranks'][1]['rows'] > 0  # both ranks had work
    return procs

def test_two_ranks_by_flag(tmp_path):
    def launch(args):
        ps = [subprocess.Popen([bin_path('clipnb_download'), *args, '--rank', str(r), '--world_size', '2'], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for r in (1, 0)]
        outs = [p.communicate(timeout=300) for p in ps]
        assert all(p.returncode == 0 for p in ps), outs
        assert 'rank 0 merges' in outs[0][0] and '43 rows' in outs[1][0]
    _sharded_equals_single(tmp_path, launch)

def test_torchrun(tmp_path):
    def launch(args):
        r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--no-python', bin_path('clipnb_download'), *args],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    _sharded_equals_single(tmp_path, launch)

def test_shards_give_the_manifest_of_one_and_resume_across_shard_sizes(srv, tmp_path):
    "The table read 4 rows at a time gives the manifest of one read whole; a rerun with another shard size fetches only what failed."
    urls = [srv.url(f'img/{i % 7}.jpg?sh') for i in range(30)] + [srv.url('status/404?sh')]
    f = write_csv(tmp_path/'urls.csv', urls)
    before = srv.hits()
    a = download_images(f, tmp_path/'a', max_workers=4, shard_rows=4, progress=False)
    assert sorted((srv.hits() - before).values()) == [1] * 8  # 7 images and the 404, each fetched once across 8 shards
    b = download_images(f, tmp_path/'b', max_workers=4, shard_rows=100_000, progress=False)
    cols = ['url', 'caption', 'status', 'error', 'bytes', 'width', 'height']
    assert a.manifest[cols].equals(b.manifest[cols]) and len(a.manifest) == 31
    assert a.manifest.image_path.tolist() == b.manifest.image_path.tolist()  # the same names: the URL's key
    assert a.stats['status'] == b.stats['status'] == {'ok': 30, 'error': 1} and a.stats['fetched'] == b.stats['fetched'] == 8
    before = srv.hits()
    c = download_images(f, tmp_path/'a', max_workers=4, shard_rows=7, progress=False)
    assert srv.hits() - before == Counter({'/status/404?sh': 1}) and c.manifest[cols].equals(a.manifest[cols])
    assert not list((tmp_path/'a').glob('manifest.csv.part-*'))
