"""Throughput of ViT-B/32 scoring by model setting and input path (`clipnb.bench_gpu.bench_gpu`).

python tools/bench_gpu.py --out DIR [--n_images 20000] [--sizes 500x375,1000x750] [--device cuda] [--batch_size 256]
                          [--batch_sizes 64,1024] [--num_workers N] [--compile] [--n_batches 10] [--shards 10]
Writes DIR/bench_gpu.json (the machine, every run, the pixel and cosine changes) and DIR/bench_gpu.md (the tables), and prints them.
On a machine without a GPU it runs on the CPU (use a small --n_images); the GPU input path then runs with
`cpu_jpeg_decoder` standing in for nvjpeg, and says so in its name."""
import argparse, sys
from pathlib import Path
from clipnb.bench_gpu import bench_gpu

a = argparse.ArgumentParser(description=__doc__.split('\n')[0])
a.add_argument('--out', required=True); a.add_argument('--n_images', type=int, default=20_000); a.add_argument('--sizes', default='500x375,1000x750')
a.add_argument('--device', default=None); a.add_argument('--batch_size', type=int, default=256); a.add_argument('--batch_sizes', default='64,1024')
a.add_argument('--num_workers', type=int, default=None); a.add_argument('--compile', action='store_true'); a.add_argument('--n_batches', type=int, default=10)
a.add_argument('--shards', type=int, default=10)
args = a.parse_args()
try:
    sizes = tuple(tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',') if s)
    bss = tuple(int(b) for b in args.batch_sizes.split(',') if b)
except ValueError:
    print(f"bench_gpu: --sizes like 500x375,1000x750 and --batch_sizes like 64,1024 (got {args.sizes!r}, {args.batch_sizes!r})", file=sys.stderr); sys.exit(2)
bench_gpu(args.out, args.n_images, sizes, args.device, args.batch_size, bss, args.num_workers, args.compile, args.n_batches, args.shards)
print(Path(args.out, 'bench_gpu.md').read_text())
