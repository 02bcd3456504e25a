"""The docs site as a person sees it: `tools/build_docs.py` builds it with Pandoc, headless Chromium reads every page.

Needs Debian's `pandoc` and `chromium` (README: Developing) and the `playwright` package; without them
these tests fail and say what is missing. Screenshots of the index, scoring, retrieval and classifier
pages go to `$CLIPNB_SCREENSHOTS` (default `_screenshots/` in the repository).
"""
import json, os, subprocess, sys, time
from pathlib import Path
import pytest
sys.path.insert(0, str(Path(__file__).parent))
from browser import missing_tools, serve, chromium, check_page, check_links

ROOT = Path(__file__).parents[1]
SHOTS = Path(os.environ.get('CLIPNB_SCREENSHOTS', ROOT/'_screenshots'))

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    miss = missing_tools()
    assert not miss, f"the docs-site tests need {', '.join(miss)}: apt-get install pandoc chromium; pip install playwright"
    out, t0 = tmp_path_factory.mktemp('site')/'_docs', time.time()
    r = subprocess.run([sys.executable, 'tools/build_docs.py', '--out', str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return dict(path=out, build_s=time.time() - t0, log=r.stdout)

def _nb_pages()->set:
    return {p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_')}

def test_every_page_reads_clean_in_chromium(site):
    "Every page: a title, no leftover markup, images loaded, no traceback, no script error; every link within the site resolves, #fragments too."
    pages = sorted(p.name for p in site['path'].glob('*.html'))
    assert len(pages) == len(_nb_pages()) + 1, pages  # one page a notebook, plus names.html
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(site['path']) as base, chromium() as b:
        page = b.new_page(viewport={'width': 1280, 'height': 900})
        res = {base + p: check_page(page, base + p) for p in pages}
        for p in ('index', 'score', 'retrieval', 'classify'):
            page.goto(base + p + '.html'); page.screenshot(path=str(SHOTS/f'docs-{p}.png'))
    bad = [f'{u[len(base):]}: {x}' for u, r in res.items() for x in r['bad']] + check_links(res, base)
    assert not bad, '\n'.join(bad[:40])
    n_links = sum(len([h for h in r['links'] if h.startswith(base)]) for r in res.values())
    (SHOTS/'site.json').write_text(json.dumps(dict(pages=len(pages), links_within_site=n_links, build_s=round(site['build_s'], 1)), indent=1))
    assert res[base + 'score.html']['h1'] == ['score']
    assert n_links > 500  # show_doc and the doc links of 30 notebooks

def test_sidebar_links_every_page_in_reading_order_and_search_finds_names(site):
    with serve(site['path']) as base, chromium() as b:
        page = b.new_page()
        page.goto(base + 'core.html')
        side = page.eval_on_selector_all('#sidebar ul.pages a', 'as => as.map(a => a.getAttribute("href"))')
        assert page.inner_text('#sidebar li.active') == 'core'
        page.fill('#search', 'score_pai')
        hits = page.eval_on_selector_all('#search-results a', 'as => as.map(a => a.getAttribute("href"))')
        assert 'score.html#score_pairs' in hits, hits
        page.click('#search-results a[href="score.html#score_pairs"]'); page.wait_for_load_state()
        assert page.url.endswith('score.html#score_pairs') and page.is_visible('#score_pairs')
        page.goto(base + 'names.html')
        names = page.eval_on_selector_all('main li a', 'as => as.map(a => a.innerText)')
    import yaml
    def out_file(nb):  # the page nbdev's processors name in the notebook's front-matter
        raw = next(c for c in json.loads((ROOT/'_proc'/nb).read_text())['cells'] if c['cell_type'] == 'raw')
        return yaml.safe_load(''.join(raw['source']).strip().strip('-'))['output-file']
    assert side == ['index.html'] + [out_file(n) for n in sorted(_nb_pages() - {'index.ipynb'})] + ['names.html']
    from clipnb.score import __all__ as score_all
    assert set(score_all) - {'logger'} <= set(names) and 'write_report' in names and len(names) > 300

def test_cell_options_are_honoured(site):
    "echo: false shows only the output; hidden cells are gone; code is highlighted; plots are files that load."
    html = (site['path']/'score.html').read_text()
    assert 'show_doc(' not in html  # show_doc cells are `echo: false`: their signature shows, not the call
    assert '<h3 id="score_pairs">score_pairs</h3>' in html
    assert 'class="sourceCode python"' in html and '<span class="im">import</span>' in html
    idx = (site['path']/'index.html').read_text()
    assert 'set_verbosity_error' not in idx and 'def figure_from' not in idx  # `#| hide` cells of index.ipynb
    assert 'figure_from(' not in idx and idx.count('<img') >= 12  # `echo: false`: the pictures, not the calls
    figs = list((site['path']/'figs').glob('*.png'))
    assert len(figs) >= 10 and all(f.read_bytes()[:4] == b'\x89PNG' for f in figs)

def test_the_check_catches_what_the_old_pages_showed(site, tmp_path):
    "Negative control: nbconvert's HTML of a processed notebook (the previous build) and a hand-broken page fail the same checks."
    proc = ROOT/'_proc'/'10_score.ipynb'  # the site fixture's build leaves it
    r = subprocess.run(['jupyter', 'nbconvert', '--to', 'html', str(proc), '--output-dir', str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    (tmp_path/'broken.html').write_text('<html><body><p>no title</p><img src="missing.png"><a href="gone.html">x</a><a href="10_score.html#nowhere">y</a>'
                                        '<pre>Traceback (most recent call last):\n  File "x.py"</pre></body></html>')
    with serve(tmp_path) as base, chromium() as b:
        page = b.new_page()
        res = {base + p: check_page(page, base + p) for p in ('10_score.html', 'broken.html')}
    old = '\n'.join(res[base + '10_score.html']['bad'])
    for want in ('#|', '{target=', 'output-file:', 'no <h1>'): assert want in old, (want, old[:2000])
    bad = res[base + 'broken.html']['bad'] + check_links(res, base)
    for want in ('no <h1>', 'broken image: missing.png', 'traceback', 'gone.html (no such page)', 'no #nowhere there'):
        assert any(want in x for x in bad), (want, bad)
