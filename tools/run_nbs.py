"""Execute notebooks in place and save their outputs for the docs, skipping the cells `nbdev_test` skips.

    python tools/run_nbs.py [NOTEBOOK ...] [--flags "slow gpu"] [--cells ID,ID]

Cells flagged with one of settings.ini's `tst_flags` (slow, gpu, dist) are skipped unless named in
`--flags`, as in `nbdev_test`, and keep the outputs of the run that last executed them (the
benchmarks' figures, which their write-ups quote); so is the final `nbdev_export()` cell. Run
`nbdev_clean` afterwards.
"""
import argparse, re, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.config import get_config

def cell_flags(src:str)->set:
    "The `#| word` directives at the top of a cell's source."
    return {m.group(1) for l in src.splitlines() if (m := re.match(r'#\|\s*([\w-]+)\s*$', l.strip()))}

def run_nb(path:Path, skip:set, cells:set=frozenset())->bool:
    nb = read_nb(path)
    skip_cell = lambda c: c.cell_type != 'code' or 'nbdev_export(' in c.source or (bool(cell_flags(c.source) & skip) and c.get('id') not in cells)
    for c in nb.cells:
        if c.cell_type == 'code' and 'nbdev_export(' in c.source: c.outputs, c.execution_count = [], None
    sh = CaptureShell(path)
    t = time.time()
    try:
        with working_directory(path.parent): sh.run_all(nb, exc_stop=True, preproc=skip_cell)
    except Exception:
        sys.stderr.write(sh.prettytb(fname=path) + '\n'); return False
    write_nb(nb, path)
    print(f'{path.name}: ran in {time.time()-t:.0f}s')
    return True

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('nbs', nargs='*'); ap.add_argument('--flags', default='')
    ap.add_argument('--cells', default='', help='comma-separated ids of flagged cells to run as well (one benchmark, not all)')
    a = ap.parse_args()
    cfg = get_config()
    paths = [Path(p) for p in a.nbs] or sorted(p for p in cfg.nbs_path.glob('*.ipynb') if not p.name.startswith('_'))
    skip = set(cfg.tst_flags.split()) - set(a.flags.split())
    ok = all([run_nb(p.absolute(), skip, set(filter(None, a.cells.split(',')))) for p in paths])
    sys.exit(0 if ok else 1)
