"""clipnb_profile as a user runs it, and the estimator's arithmetic on edge cases."""
import json, subprocess
import pytest
from conftest import bin_path
from clipnb.synthetic import write_shapes
from clipnb.shapes import shapes_model_path
from clipnb.profile import estimate_scaling, Hardware

def test_profile_cli(tmp_path):
    f = write_shapes(tmp_path/'s', n_images=48, seed=3)
    r = subprocess.run([bin_path('clipnb_profile'), '--csv_path', str(f.urls_csv), '--model_name', str(shapes_model_path()), '--device', 'cpu',
                        '--output_dir', str(tmp_path/'p'), '--batch_size', '8', '--batch_sizes', '1,8', '--num_workers', '0',
                        '--n_pairs', '1e6', '--machines', '3', '--price_per_hour', '2.5'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'estimate for 1,000,000 pairs' in r.stdout
    p = json.loads((tmp_path/'p'/'profile.json').read_text())
    assert p['pairs'] == 40 and set(p['stages']) >= {'decode', 'preprocess', 'image_tower', 'text_tower', 'write'}
    assert [s['batch_size'] for s in p['sweep']] == [1, 8] and sum(s['knee'] for s in p['sweep']) == 1
    e = p['estimate']; assert e['cost'] == pytest.approx(e['hours'] * 3 * 2.5)
    for png in ('stage_breakdown.png', 'memory_over_time.png', 'batch_sweep.png'): assert (tmp_path/'p'/png).stat().st_size > 5000
    r = subprocess.run([bin_path('clipnb_profile'), '--csv_path', str(tmp_path/'absent.csv'), '--model_name', str(shapes_model_path())],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'absent.csv' in r.stderr and r.stderr.count('\n') == 1

def test_profile_cli_compare(tmp_path):
    f = write_shapes(tmp_path/'s', n_images=48, seed=4)
    r = subprocess.run([bin_path('clipnb_profile'), '--csv_path', str(f.urls_csv), '--model_name', str(shapes_model_path()), '--device', 'cpu',
                        '--output_dir', str(tmp_path/'p'), '--batch_size', '8', '--batch_sizes', '4,8', '--num_workers', '2', '--compare'],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    import pandas as pd
    c = pd.read_csv(tmp_path/'p'/'compare.csv')
    assert c.groupby('setting', sort=False).value.apply(list).to_dict() == {
        'batch_size': ['4', '8'], 'dtype': ['fp32', 'bf16'], 'num_workers': ['0', '1', '2'], 'pixels_on_device': ['False', 'True']}
    assert (c.pairs == 48).all() and c.base.sum() == 4
    assert c.dtype.tolist() == ['fp32'] * 2 + ['fp32', 'bf16'] + ['fp32'] * 5  # each run used the dtype it names
    assert c.pixels_on_device_used.tolist() == [True] * 7 + [False, True]
    md = (tmp_path/'p'/'compare.md').read_text()
    assert '| dtype | **fp32** / bf16 |' in md and md in r.stdout and 'compare.csv' in r.stdout
    assert not (tmp_path/'p'/'tmp').exists()

def test_estimate_is_linear_in_pairs_and_machines():
    a = estimate_scaling(1e6, 100, 50, overhead_s=10, hw=Hardware(decode_cores_per_machine=4))
    b = estimate_scaling(2e6, 100, 50, overhead_s=10, hw=Hardware(decode_cores_per_machine=4))
    assert b['seconds'] - 10 == pytest.approx(2 * (a['seconds'] - 10))
    c = estimate_scaling(2e6, 100, 50, overhead_s=10, hw=Hardware(machines=2, decode_cores_per_machine=4))
    assert c['seconds'] == pytest.approx(a['seconds']) and c['machine_hours'] == pytest.approx(2 * c['hours'])
    assert estimate_scaling(0, 100)['seconds'] == 0
    with pytest.raises(ValueError): estimate_scaling(-1, 100)
