"""The results browser on a million-row results file: indexed in chunks, pages read back by offset, memory far below the file's size.

The file is generated here (1M rows of `score_pairs`' columns, ~150 MB, captions with quoted commas, quotes and newlines); each
measurement runs in a fresh process and reads its peak RSS. The negative control loads the same file
with `pd.read_csv`, the thing the browser avoids, and must exceed the bound the browser meets.
"""
import json, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image

N = 1_000_000

@pytest.fixture(scope='module')
def big(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('browse')
    for k in range(4): Image.new('RGB', (32, 32), (60 * k, 100, 200 - 40 * k)).save(tmp/f'img{k}.png')
    i = np.arange(N)
    shapes = ['a small red circle on a grey background', 'a large blue square in the top left corner', 'a green triangle at the bottom right']
    cap = pd.Series([f'caption {j}: {shapes[j % 3]}' for j in range(N)], dtype=object)
    cap[i % 100_000 == 7] = 'a "quoted", two-line\ncaption'  # quotes, a comma and a newline inside the field
    err = i % 1000 == 999
    df = pd.DataFrame(dict(key=[f'{j:09d}' for j in range(N)], url=[f'https://images.example.com/shapes/{j % 1000:03d}/{j:09d}.jpg' for j in range(N)],
                           image_path=[f'img{j % 4}.png' for j in range(N)], caption=cap, label=i % 2,
                           cosine=np.where(err, np.nan, ((i * 7919) % 10007) / 10007 * 2 - 1).round(6),
                           clipscore=np.where(err, np.nan, np.maximum(((i * 7919) % 10007) / 10007 * 2 - 1, 0) * 100).round(4),
                           status=np.where(err, 'error', 'ok'), error=np.where(err, 'http_404: Not Found', '')))
    path = tmp/'results.csv'; df.to_csv(path, index=False)
    return path, df

def _run(code:str)->dict:
    "Run `code` in a fresh Python; it sets `out` (a dict); returns it with the growth of peak RSS over RSS before `code`."
    prog = textwrap.dedent('''
        import json, re
        def rss(k): return int(re.search(k + r':\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024
        import numpy as np, pandas as pd, ipywidgets
        from clipnb.browse import browse_results, ResultsIndex
        base = rss('VmRSS')
    ''') + textwrap.dedent(code) + "\nout['grown'] = rss('VmHWM') - base\nprint(json.dumps(out))\n"
    r = subprocess.run([sys.executable, '-c', prog], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_a_million_rows_browse_in_a_fraction_of_the_files_size(big):
    path, df = big
    size = path.stat().st_size
    got = _run(f'''
        b = browse_results({str(path)!r}, image_root={str(path.parent)!r}, page_size=10)
        out = dict(n=len(b.ix), kinds=b.ix.kind_counts(), pages=b.n_pages, first=b.current.index.tolist())
        b.show(b.n_pages - 1); out['last'] = b.current.index.tolist(); out['last_caps'] = b.current.caption.tolist()
        out['imgs'] = b.view.value.count('<img')
        b.kind.value = 'http_404'; out['errors'] = b.matches.tolist()[:3] + [len(b.matches)]
        b.kind.value = None; b.text.value = 'two-line'; out['multi'] = b.matches.tolist(); out['multi_caps'] = b.current.caption.tolist()
        b.text.value = ''; b.label.value = 1; b.score.value = (0.99, b.score.max); out['high'] = len(b.matches); out['high_rows'] = b.current.index.tolist()
        ix = b.ix; rows = ix.rows([999_999, 0, 500_007, 123_456])
        out['rows'] = rows.caption.tolist(); out['rows_cos'] = rows.cosine.tolist()
    ''')
    assert got['n'] == N and got['kinds'] == {'ok': N - 1000, 'http_404': 1000} and got['pages'] == N // 10
    assert got['first'] == list(range(10)) and got['last'] == list(range(N - 10, N)) and got['imgs'] == 10
    assert got['last_caps'] == df.caption[N - 10:].tolist()
    assert got['errors'] == [999, 1999, 2999, 1000]
    assert got['multi'] == list(range(7, N, 100_000)) and got['multi_caps'] == ['a "quoted", two-line\ncaption'] * 10
    high = df[(df.cosine >= 0.99) & (df.label == 1)]
    assert got['high'] == len(high) > 100 and got['high_rows'] == high.index[:10].tolist()
    assert got['rows'] == df.caption[[0, 123_456, 500_007, 999_999]].tolist()
    assert np.allclose(got['rows_cos'][:3], df.cosine[[0, 123_456, 500_007]]) and np.isnan(got['rows_cos'][3])
    assert got['grown'] < 0.5 * size, (got['grown'] / 2**20, size / 2**20)
    full = _run(f"d = pd.read_csv({str(path)!r}); out = dict(n=len(d))")  # the negative control: loading it whole
    assert full['n'] == N and full['grown'] > 0.5 * size, (full['grown'] / 2**20, size / 2**20)
    print(f"\n{N:,} rows, {size / 2**20:.1f} MiB: the browser's peak grew {got['grown'] / 2**20:.1f} MiB, pd.read_csv's {full['grown'] / 2**20:.1f} MiB")
