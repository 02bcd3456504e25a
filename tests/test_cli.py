"""The console scripts, run as a user runs them: as subprocesses, checking exit codes, output and files."""
import json, subprocess
import numpy as np
import pandas as pd
from conftest import bin_path

def run(*args, **kw): return subprocess.run([bin_path(args[0]), *args[1:]], capture_output=True, text=True, timeout=600, **kw)

def test_demo_end_to_end(tmp_path):
    out = tmp_path/'demo'
    r = run('clipnb_demo', '--output_dir', str(out), '--n_images', '30')
    assert r.returncode == 0, r.stderr
    assert 'clipnb demo: 30 pairs' in r.stdout and 'AUROC' in r.stdout
    inp, res = pd.read_csv(out/'shapes'/'urls.csv'), pd.read_csv(out/'similarity_results.csv')
    assert len(res) == len(inp) == 30 and res[inp.columns].equals(inp)  # every row, in input order
    assert (res.status == 'ok').all() and np.allclose(res.clipscore, 100 * res.cosine.clip(lower=0), atol=1e-3)
    s = json.loads((out/'demo.json').read_text())
    assert s['n_pairs'] == 30 and s['auroc'] > 0.95  # the shipped model separates matched from mismatched captions (0.997 on the 60-image demo)

def test_demo_rerun_overwrites_cleanly(tmp_path):
    out = tmp_path/'demo'
    for _ in range(2): assert run('clipnb_demo', '--output_dir', str(out), '--n_images', '10').returncode == 0
    assert len(pd.read_csv(out/'similarity_results.csv')) == 10

def test_demo_help():
    r = run('clipnb_demo', '--help')
    assert r.returncode == 0 and '--output_dir' in r.stdout and 'where the data, images and results go' in r.stdout

def test_validate_exit_codes(tmp_path):
    good = tmp_path/'good.csv'; good.write_text('url,caption\nhttp://x/a.jpg,a dog\n')
    bad = tmp_path/'bad.csv'; bad.write_text('url,caption\nhttp://x/a.jpg,\n')
    semi = tmp_path/'semi.csv'; semi.write_text('url;caption\nhttp://x/a.jpg;a\n')
    r = run('clipnb_validate', str(good)); assert r.returncode == 0 and 'OK' in r.stdout
    r = run('clipnb_validate', str(bad), '--report', str(tmp_path/'issues.csv'))
    assert r.returncode == 1 and 'empty_caption' in r.stdout
    assert pd.read_csv(tmp_path/'issues.csv').to_dict('records')[0]['row'] == 0
    r = run('clipnb_validate', str(semi)); assert r.returncode == 2 and "pass sep=';'" in r.stderr
    assert run('clipnb_validate', str(semi), '--sep', ';').returncode == 0

def test_validate_column_mapping(tmp_path):
    p = tmp_path/'m.csv'; p.write_text('link,caption_en\nhttp://x/a.jpg,a dog\n')
    r = run('clipnb_validate', str(p))
    assert r.returncode == 1 and 'missing_column' in r.stdout and 'found: link, caption_en' in r.stdout
    r = run('clipnb_validate', str(p), '--columns', 'link:url,caption_en:text')
    assert r.returncode == 0, r.stdout + r.stderr

def test_eval_retrieval_cli(tmp_path):
    from clipnb.synthetic import write_shapes
    from clipnb.shapes import shapes_model_path
    files = write_shapes(tmp_path/'s', n_images=60, seed=5)
    r = run('clipnb_eval_retrieval', '--model_name', str(shapes_model_path()), '--dataset', str(files.hf), '--output_dir', str(tmp_path/'ev'))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path/'ev'/'test_metric.json').read_text())
    assert (m['n_images'], m['n_texts']) == (6, 30) and 'text_to_image  R@1' in r.stdout
    r = run('clipnb_eval_retrieval', '--model_name', str(shapes_model_path()), '--dataset', str(tmp_path/'missing'), '--output_dir', str(tmp_path/'ev2'))
    assert r.returncode == 2 and "not 'flickr8k', 'flickr30k'" in r.stderr and 'Traceback' not in r.stderr

def test_train_commands_help():
    for cmd, flag in [('clipnb_train_contrastive', '--grad_ckpt'), ('clipnb_train_contrastive', '--train_bs'), ('clipnb_train_shapes', '--export_to')]:
        r = run(cmd, '--help'); assert r.returncode == 0 and flag in r.stdout
