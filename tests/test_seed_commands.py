"""The seeds' README commands as written, rewritten by `from_seed` (the script's name becomes clipnb's), run on CPU with gloo:
seed 000's basic, custom, examples 1-3, `--model_type siglip`, spawned `--distributed`, the legacy launcher on one node and on two
(on this machine), and seed 001's `--config` with both `image_path` kinds, for scoring and profiling.

Adapted, and only this: `data.csv` holds loopback URLs (`ImageServer`), the hub ids the seeds name are served from a local hub cache
holding tiny models (`offline_hub`), and launchers get a free `--master_port` and `127.0.0.1` for the seed's `192.168.1.1`."""
import os, shlex, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from conftest import bin_path, ROOT
from clipnb.dist import free_port
from clipnb.entry import SEED_COMMANDS, from_seed
from clipnb.shapes import shapes_model_path
from clipnb.synthetic import make_tiny_siglip
from clipnb.testing import ImageServer, assert_same_results, offline_hub, server_jpeg

N = 30
CAPTIONS = ['a red circle', 'a small blue square on a white background', 'two green triangles', 'a large yellow star']

@pytest.fixture(scope='module')
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp('seeds')
    hub = offline_hub(d/'hub', {'openai/clip-vit-base-patch32': shapes_model_path(), 'google/siglip-base-patch16-224': make_tiny_siglip(d/'siglip')})
    env = dict(os.environ, **hub, TOKENIZERS_PARALLELISM='false', OMP_NUM_THREADS='1', PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with ImageServer() as srv:
        data = pd.DataFrame(dict(url=[srv.url(f'img/{i}.jpg') for i in range(N)], caption=[CAPTIONS[i % 4] for i in range(N)]))
        yield dict(d=d, env=env, srv=srv, data=data)

def run(seeds, seed_cmd:str, name:str, port:int|None=None):
    "`from_seed(seed_cmd)` as arguments, and a fresh folder holding data.csv to run it in (the seed's master address and port adapted)."
    cwd = seeds['d']/name
    cwd.mkdir()
    seeds['data'].to_csv(cwd/'data.csv', index=False)
    cmd = from_seed(seed_cmd)
    if port: cmd = cmd.replace('192.168.1.1', '127.0.0.1').replace('12355', str(port))
    args = shlex.split(cmd)
    if args[0] == 'python': args[0] = sys.executable
    if args[0].startswith('clipnb'): args[0] = bin_path(args[0])
    return cwd, args

def go(cwd, args, env, timeout=600):
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-4000:])
    return r

def results(path)->pd.DataFrame: return pd.read_csv(path, dtype=str, keep_default_na=False)

def same(path, ref):
    "The results at `path` are `ref`'s: rows, statuses and scores (each run has its own image folder, so not its paths)."
    assert_same_results(results(path).drop(columns='image_path'), ref.drop(columns='image_path'))

@pytest.fixture(scope='module')
def reference(seeds):
    "Seed 000's basic command: `python poc.py --csv_path data.csv`, as `clipnb_score --csv_path data.csv`."
    cwd, args = run(seeds, SEED_COMMANDS[0], 'basic')
    assert args[1:] == ['--csv_path', 'data.csv']
    r = go(cwd, args, seeds['env'])
    res = results(cwd/'outputs'/'similarity_results.csv')  # seed 000's default output folder and file name
    assert f'{N} pairs: {N} scored, 0 errors' in r.stdout and res.url.tolist() == seeds['data'].url.tolist()
    assert (cwd/'outputs'/'images'/'manifest.csv').exists() and (cwd/'outputs'/'similarity_distribution.png').exists()
    return res

def test_custom_and_examples(seeds, reference):
    # the custom configuration (--output_dir results --verbose), examples 1 and 2, and every "Configuration Options" switch
    for i, out in ((1, 'results'), (7, 'outputs'), (8, 'outputs')):
        cwd, args = run(seeds, SEED_COMMANDS[i], f'example{i}')
        r = go(cwd, args, seeds['env'])
        same(cwd/out/'similarity_results.csv', reference)
        if '--verbose' in args: assert 'INFO' in r.stderr  # --verbose shows the log
    cwd, args = run(seeds, "python poc.py --csv_path data.csv --save_results --no_shuffle --rank 0 --world_size 1 --backend gloo --model_type clip "
                           "--results_file similarity_results.csv --image_dir outputs/images --device cpu --log_level DEBUG --force_download", 'options')
    r = go(cwd, args, seeds['env'])
    same(cwd/'outputs'/'similarity_results.csv', reference)

def test_model_type_siglip(seeds):
    cwd, args = run(seeds, SEED_COMMANDS[2], 'model_type_siglip')  # --world_size 1 --model_type siglip: google/siglip-base-patch16-224 by default
    go(cwd, args, seeds['env'])
    res = results(cwd/'outputs'/'similarity_results.csv')
    assert len(res) == N and 'siglip_prob' in res.columns and res.status.eq('ok').all()

@pytest.mark.parametrize('i', [3, 9], ids=['world_size_2', 'world_size_4_batch_16'])
def test_spawned(seeds, reference, i):
    cwd, args = run(seeds, SEED_COMMANDS[i], f'spawned{i}')
    assert '--distributed' in args
    go(cwd, args, seeds['env'])
    same(cwd/'outputs'/'similarity_results.csv', reference)

@pytest.mark.parametrize('i', [5, 12], ids=['nproc_2', 'example_3_nproc_4'])
def test_legacy_launcher(seeds, reference, i):
    cwd, args = run(seeds, SEED_COMMANDS[i], f'legacy{i}')
    assert args[1:3] == ['-m', 'torch.distributed.launch'] and args[4:7] == ['-m', 'clipnb.cli', 'score']
    args.insert(4, f'--master_port={free_port()}')
    r = go(cwd, args, seeds['env'])
    assert r.stdout.count(f'{N} pairs:') == 1  # rank 0 reports
    same(cwd/'outputs'/'similarity_results.csv', reference)

def test_legacy_launcher_two_nodes(seeds, reference):
    # seed 000's multi-node example: node 0 and node 1 (here both on this machine), 2 processes each, --world_size 4
    cwd, args0 = run(seeds, SEED_COMMANDS[6], 'nodes', port=free_port())
    args1 = [a.replace('--node_rank=0', '--node_rank=1') for a in args0]
    assert '--node_rank=1' in args1 and '--master_addr=127.0.0.1' in args0
    procs = [subprocess.Popen(a, cwd=cwd, env=seeds['env'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in (args0, args1)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-3000:] for o in outs]
    assert outs[0][0].count(f'{N} pairs:') == 1 and f'{N} pairs:' not in outs[1][0]  # global rank 0 is on node 0
    same(cwd/'outputs'/'similarity_results.csv', reference)

def test_legacy_launcher_download(seeds):
    cwd, args = run(seeds, "python -m torch.distributed.launch --nproc_per_node=2 poc.py --csv_path data.csv", 'legacy_download')
    args[args.index('score')] = 'download'
    args.insert(4, f'--master_port={free_port()}')
    go(cwd, args, seeds['env'])
    m = pd.read_csv(cwd/'outputs'/'images'/'manifest.csv')
    assert m.url.tolist() == seeds['data'].url.tolist() and m.status.eq('ok').all()

def test_local_rank_spellings():
    from clipnb.cli import score_cli, download_cli, train_contrastive_cli, train_shapes_cli, validate_cli
    for cmd in (score_cli, download_cli, train_contrastive_cli, train_shapes_cli):
        p = cmd.parser()
        assert p.parse_args(['--local-rank=1']).local_rank == 1 and p.parse_args(['--local_rank', '3']).local_rank == 3
    with pytest.raises(SystemExit): validate_cli.parser().parse_args(['--local-rank=0'])

def seed001(seeds, name, image_path):
    "Seed 001's layout: challenge_set/challenge_set.csv of URLs and captions, the images in challenge_set/, and its config.yaml verbatim."
    cwd = seeds['d']/name
    (cwd/'challenge_set').mkdir(parents=True)
    seeds['data'].to_csv(cwd/'challenge_set'/'challenge_set.csv', index=False)
    for i in range(N): (cwd/'challenge_set'/f'{i}.jpg').write_bytes(server_jpeg(i))
    (cwd/'config.yaml').write_text(f'''csv_path: "./challenge_set/challenge_set.csv"  # Path to the CSV file containing image URLs and captions
image_path: {image_path}  # Option to retrieve images from the network using provided URLs or read from the local drive
use_cuda: true  # Option to use GPU
pretrained_model: "openai/clip-vit-base-patch32"  # Pretrained CLIP model; can be set to other options as well
batch_size: 10 ## batch size
img_resize: 800 ## imgae resizing for batch processing
''')
    return cwd

def test_seed001_config(seeds, reference):
    env, hits = seeds['env'], lambda: sum(seeds['srv'].hits().values())
    args = shlex.split(from_seed(SEED_COMMANDS[10]))
    assert args == ['clipnb_score', '--config', './config.yaml'] and from_seed(SEED_COMMANDS[11]) == from_seed(SEED_COMMANDS[10])
    args[0] = bin_path(args[0])
    url = seed001(seeds, 'seed001_url', '"url"')
    before = hits()
    r = go(url, args, env)
    assert hits() - before == N  # image_path: url fetched every image
    if not __import__('torch').cuda.is_available(): assert 'use_cuda: true, but CUDA is not available' in r.stderr
    assert 'img_resize: 800 ignored' in r.stderr
    same(url/'outputs'/'similarity_results.csv', reference)
    local = seed001(seeds, 'seed001_local', '"./challenge_set/" ## "url"')
    before = hits()
    go(local, args, env)
    assert hits() == before and not (local/'outputs'/'images').exists()  # a folder: nothing fetched
    same(local/'outputs'/'similarity_results.csv', reference)
    # the command line wins over the file; and clipnb_profile reads the same file
    go(local, args + ['--batch_size', '4', '--results_file', 'b4.csv'], env)
    same(local/'outputs'/'b4.csv', reference)
    go(local, [bin_path('clipnb_profile'), '--config', './config.yaml', '--batch_sizes', '1,10', '--num_workers', '0'], env)
    prof = __import__('json').loads((local/'outputs'/'profile'/'profile.json').read_text())
    assert prof['batch_size'] == 10, prof.get('batch_size')  # batch_size: 10 from the file

def test_bad_config_is_one_line(seeds):
    cwd = seed001(seeds, 'seed001_bad', '"url"')
    (cwd/'config.yaml').write_text((cwd/'config.yaml').read_text() + 'resize_to: 224\n')
    r = subprocess.run([bin_path('clipnb_score'), '--config', 'config.yaml'], cwd=cwd, env=seeds['env'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "clipnb_score: error: --config config.yaml: unknown key resize_to (keys are this command's flags, or seed 001's pretrained_model, use_cuda, image_path, img_resize)"]

def test_readme_maps_every_seed_command():
    readme = (ROOT/'README.md').read_text()
    for c in SEED_COMMANDS: assert f'`{from_seed(c)}`' in readme, from_seed(c)
