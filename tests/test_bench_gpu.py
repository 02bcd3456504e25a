"""`tools/bench_gpu.py` runs on a CPU at a small size, as CI runs it: the JSON and the table, every row scored, the GPU path's stand-in named."""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

def test_bench_gpu_runs_on_cpu_and_writes_its_table(tmp_path):
    r = subprocess.run([sys.executable, 'tools/bench_gpu.py', '--out', str(tmp_path), '--n_images', '12', '--sizes', '500x375,200x150', '--device', 'cpu',
                        '--batch_size', '4', '--batch_sizes', '2', '--num_workers', '1', '--n_batches', '1', '--shards', '3'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    j = json.loads((tmp_path/'bench_gpu.json').read_text())
    e2e = [x for x in j['runs'] if x['part'] == 'end to end']
    assert [x['setting'] for x in e2e] == ['exact, 500×375', 'draft, 500×375', "gpu (cpu_jpeg_decoder in nvjpeg's place), 500×375",
                                           'exact, 200×150', 'draft, 200×150', "gpu (cpu_jpeg_decoder in nvjpeg's place), 200×150"]
    assert all(x['ok'] == x['rows'] == 12 and x['pairs_per_s'] > 0 for x in e2e)
    assert len([x for x in j['runs'] if x['part'] == 'model only']) == 6 and j['model'].startswith('CLIPModel(CLIPConfig())')
    start = [x for x in j['runs'] if x['part'] == 'start-up']  # one call over 3 shards, then a call per shard
    assert [x['worker_starts'] for x in start] == [1, 3] and all(x['rows'] == 12 for x in start)
    assert [c['path'] for c in j['change']] == ['exact', 'draft', "gpu (cpu_jpeg_decoder in nvjpeg's place)"] * 2
    assert [c['max_abs_cos'] == 0 for c in j['change']] == [True, False, False, True, True, False]  # 500×375 at 224 px leaves draft mode nothing to reduce
    md = (tmp_path/'bench_gpu.md').read_text()
    assert md.startswith('# bench_gpu on') and 'baseline: fp32, eager attention, pad to 77' in md and 'bf16 autocast' in md and '## Pixels and cosines against the exact path' in md

def test_bench_gpu_refuses_a_bad_size_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, 'tools/bench_gpu.py', '--out', str(tmp_path), '--sizes', '500by375'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and '--sizes like 500x375' in r.stderr
