"""Peak memory and throughput of clipnb_score and clipnb_download as the table grows (`clipnb.bench.bench_scale`).

python tools/bench_scale.py OUT_DIR [--rows 20000,200000,2000000] [--download_rows 20000,200000] [--formats webdataset,files]
                              [--download_flags '--image_size 64'] [--server_route img|small] [--score_formats webdataset,parquet]
                              [--work /tmp/bench_scale]
Writes OUT_DIR/scale.json (the machine and every run) and prints the table."""
import argparse, json, os, sys
from pathlib import Path
from clipnb.bench import bench_scale

a = argparse.ArgumentParser()
a.add_argument('out'); a.add_argument('--rows', default='20000,200000,2000000'); a.add_argument('--download_rows', default='20000,200000')
a.add_argument('--formats', default='webdataset,files'); a.add_argument('--download_flags', default='', help="more flags for clipnb_download")
a.add_argument('--server_route', default='img', help="the image server's route: img (320x240 JPEGs) or small (64x48)")
a.add_argument('--score_formats', default='', help="downloaded formats that clipnb_score then reads: webdataset,parquet")
a.add_argument('--work', default='/tmp/bench_scale')
args = a.parse_args()
out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
ints = lambda s: tuple(int(x) for x in s.split(',') if x)
df = bench_scale(args.work, ints(args.rows), ints(args.download_rows), tuple(f for f in args.formats.split(',') if f), download_flags=tuple(args.download_flags.split()), server_route=args.server_route,
                 score_formats=tuple(f for f in args.score_formats.split(',') if f))
(out/'scale.json').write_text(json.dumps(dict(cpus=os.cpu_count(), python=sys.version.split()[0], runs=df.to_dict('records')), indent=1))
print(df.to_string(index=False))
