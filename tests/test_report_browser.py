"""report.html of a scoring run as a person sees it: opened in headless Chromium, with labels and broken rows.

Needs Debian's `chromium` and the `playwright` package (see tests/test_docs_site.py). The screenshot
goes to `$CLIPNB_SCREENSHOTS/report.png` (default `_screenshots/`).
"""
import os, sys
from pathlib import Path
import pandas as pd
import pytest
sys.path.insert(0, str(Path(__file__).parent))
from browser import missing_tools, serve, chromium, check_page
from clipnb.synthetic import write_shapes
from clipnb.models import load_model
from clipnb.shapes import shapes_model_path
from clipnb.score import score_pairs
from clipnb.report import write_report

ROOT = Path(__file__).parents[1]
SHOTS = Path(os.environ.get('CLIPNB_SCREENSHOTS', ROOT/'_screenshots'))

@pytest.fixture(scope='module')
def report(tmp_path_factory):
    miss = [m for m in missing_tools() if m != 'pandoc']
    assert not miss, f"the report browser test needs {', '.join(miss)}: apt-get install chromium; pip install playwright"
    tmp = tmp_path_factory.mktemp('report')
    files = write_shapes(tmp/'shapes', n_images=30, seed=2)
    t = pd.read_csv(files.urls_csv)
    (tmp/'broken.png').write_bytes(b'not a png')
    extra = pd.DataFrame(dict(url=[f'file://{tmp}/missing.png', f'file://{tmp}/broken.png'], caption=['a missing file', 'a broken file'], label=[1, 0], image_id=[-1, -2]))
    pd.concat([t, extra]).to_csv(tmp/'pairs.csv', index=False)
    model = load_model(shapes_model_path(), device='cpu')
    score_pairs(tmp/'pairs.csv', model, tmp/'results.csv', num_workers=0, progress=False)
    return write_report(tmp/'results.csv', tmp/'pairs.csv', tmp/'out', model), pd.read_csv(tmp/'results.csv')

def test_report_opens_with_plots_gallery_curves_threshold_table_and_errors(report):
    paths, res = report
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(paths['report'].parent) as base, chromium() as b:
        page = b.new_page(viewport={'width': 1100, 'height': 900})
        r = check_page(page, base + 'report.html')
        imgs = page.eval_on_selector_all('img', 'is => is.map(i => [i.naturalWidth, i.getBoundingClientRect().height])')
        heads = page.eval_on_selector_all('h2, h3', 'hs => hs.map(h => h.innerText)')
        table = page.eval_on_selector_all('table.thresholds tr', 'rs => rs.map(r => [...r.cells].map(c => c.innerText))')
        best = page.eval_on_selector_all('table.thresholds tr.best', 'rs => rs.length')
        text = page.inner_text('body')
        page.screenshot(path=str(SHOTS/'report.png'), full_page=True)
    assert r['bad'] == [], r['bad']
    assert len(imgs) == 4 and all(w > 100 and h > 100 for w, h in imgs), imgs  # distribution, ROC/PR, heatmap, gallery: each loaded and drawn
    for h in ('Distribution', 'Matches and mismatches (label)', 'Threshold table', 'Top and bottom pairs', 'Rows that could not be scored'):
        assert h in heads, (h, heads)
    assert table[0] == ['threshold', 'predicted matches', 'precision', 'recall', 'F1', 'accuracy'] and len(table) >= 6 and best == 1, table
    kinds = res[res.status.ne('ok')].error.str.split(':').str[0].value_counts()
    assert len(kinds) == 2 and kinds.sum() == 2, kinds  # the missing and the broken file
    for k, n in kinds.items(): assert f'{k}\t{n}' in text, (k, n, text[-800:])
