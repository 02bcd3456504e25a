"""The README's snippets run as pasted: its Python blocks, in order, in one fresh interpreter; its demo command in a shell.

README.md is generated from nbs/index.ipynb (tools/build_docs.py), so this checks that no import or
setup the tour needs is hidden. Both run in an empty folder with no network and no hub.
"""
import os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

def blocks(lang:str)->list:
    return re.findall(rf'^``` ?{lang}\n(.*?)^```', (ROOT/'README.md').read_text(), flags=re.S | re.M)

def test_the_python_snippets_run_as_pasted(tmp_path):
    code = '\n'.join(blocks('python'))
    assert 'from clipnb.cli import demo' in code and 'browse_results' in code and len(blocks('python')) >= 20
    env = dict(os.environ, HF_HUB_OFFLINE='1', MPLBACKEND='Agg')
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'clipnb demo: 60 pairs' in r.stdout and "'kept': 30" in r.stdout
    broken = code.replace('from clipnb.cli import demo\n', '', 1)  # the negative control: an import hidden, as the README once had
    (tmp_path/'broken').mkdir()
    r2 = subprocess.run([sys.executable, '-c', broken], cwd=tmp_path/'broken', capture_output=True, text=True, timeout=600, env=env)
    assert r2.returncode != 0 and "NameError: name 'demo' is not defined" in r2.stderr, r2.stderr[-1000:]
    for f in ('outputs/demo/report.html', 'outputs/demo/roc_pr.png', 'outputs/tour/images/manifest.csv', 'outputs/tour/curated/curate_hist.png'):
        assert (tmp_path/f).exists(), f

def test_the_demo_command_runs_as_pasted(tmp_path):
    cmd = next(l for b in blocks('sh') for l in b.splitlines() if l.startswith('clipnb_demo'))
    r = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path/'outputs'/'demo'/'report.html').exists() and 'AUROC' in r.stdout
