"""The profiling runs behind the H100 figures in nbs/12_profile.ipynb (run on the device tool's machine; CPU for a dry run).

python tools/gpu_profile.py OUT_DIR [--part stages|compare|check|report|all] [--n N] [--device cuda] [--workers 15]
Writes OUT_DIR/<part>.json (and the report's markdown and plots)."""
import argparse, json, logging, os, sys, time
from pathlib import Path
import pandas as pd, torch
from clipnb.bench import make_vit_b32, bench_images
from clipnb.profile import profile_stages, stage_summary, compare_settings, check_estimate, profile_report, Hardware

p = argparse.ArgumentParser()
p.add_argument('out'); p.add_argument('--part', default='all'); p.add_argument('--n', type=int, default=16384)
p.add_argument('--device', default='cuda'); p.add_argument('--dtype', default='fp16'); p.add_argument('--workers', type=int, default=15)
p.add_argument('--batch', type=int, default=256); p.add_argument('--checks', type=int, default=3)
a = p.parse_args()
out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
work = Path('/tmp/gpu_profile'); logging.basicConfig(level=logging.WARNING)
t0 = time.time()
src = bench_images(work/'imgs', 4 * a.n, n_distinct=min(4096, 4 * a.n))
big = pd.read_csv(src); big['image_path'] = [str(work/'imgs'/p) for p in big.image_path]
def head(k):
    f = work/f'pairs_{k}.csv'; big.head(k).to_csv(f, index=False); return f
print(f'images ready in {time.time() - t0:.0f}s', flush=True)
m = make_vit_b32(a.device, a.dtype)
info = dict(device=torch.cuda.get_device_name() if a.device == 'cuda' else 'cpu', cores=os.cpu_count(), torch=torch.__version__, args=vars(a))
parts = ['stages', 'compare', 'check', 'report'] if a.part == 'all' else a.part.split(',')
for part in parts:
    t0 = time.time()
    if part == 'stages':
        prof = profile_stages(head(8 * a.batch), m, a.batch)
        res = stage_summary(prof).round(6).to_dict(orient='index')
        print(stage_summary(prof).round(4).to_string())
    elif part == 'compare':
        ws = sorted({1, a.workers // 4, a.workers // 2, a.workers} - {0})
        cmp = compare_settings(head(a.n), m, dict(batch_size=(32, 128, a.batch, 4 * a.batch), dtype=('fp32', 'bf16', 'fp16'),
                               num_workers=ws, pixels_on_device=(False, True)), base=dict(batch_size=a.batch, num_workers=a.workers, dtype=a.dtype))
        res = dict(base=cmp.attrs['base'], rows=cmp.to_dict(orient='records'))
        print(cmp.round(2).to_string())
    elif part == 'check':
        res = [check_estimate(src, m, n=a.n, factor=4, batch_size=a.batch, num_workers=a.workers, out_dir=work/'check') for _ in range(a.checks)]
        print(pd.DataFrame(res).to_string())
    elif part == 'report':
        rep = profile_report(head(a.n // 2), m, out/'report', batch_size=a.batch, batch_sizes=(64, a.batch, 4 * a.batch), num_workers=a.workers,
                             hw=Hardware(decode_cores_per_machine=a.workers, price_per_hour=2.5))
        res = {k: v for k, v in rep.items() if k not in ('json', 'markdown') and not str(v).endswith('.png')}
        print((out/'report'/'profile.md').read_text())
    (out/f'{part}.json').write_text(json.dumps(dict(info, seconds=round(time.time() - t0, 1), result=res), indent=1, default=str))
    print(f'{part} done in {time.time() - t0:.0f}s', flush=True)
