"""The package builds as a wheel whose runtime requirements exclude nbdev and the test tools, and which
carries every generated module and the console scripts."""
import subprocess, sys, zipfile
from pathlib import Path

def test_wheel(tmp_path, root):
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path), str(root)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    whl, = tmp_path.glob('clipnb-*.whl')
    z = zipfile.ZipFile(whl)
    names = z.namelist()
    for mod in sorted(p.name for p in (root/'clipnb').glob('*.py')): assert f'clipnb/{mod}' in names, mod
    meta = next(z.read(n).decode() for n in names if n.endswith('METADATA'))
    reqs = [l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:')]
    runtime = [q for q in reqs if 'extra ==' not in q]
    dev = [q for q in reqs if 'extra ==' in q]
    assert any(q.startswith('torch') for q in runtime) and any(q.startswith('transformers') for q in runtime)
    assert not any(q.split('=')[0].split('>')[0].split('<')[0].strip() in ('nbdev', 'pytest', 'execnb') for q in runtime), runtime
    assert any(q.startswith('nbdev') for q in dev)
    eps = next(z.read(n).decode() for n in names if n.endswith('entry_points.txt'))
    assert 'clipnb_demo = clipnb.cli:demo' in eps and 'clipnb_validate = clipnb.cli:validate_cli' in eps
