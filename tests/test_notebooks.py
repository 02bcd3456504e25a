"""The notebooks keep the house shape (../shared/STYLE.md): short notebooks, every exported name followed by prose and by
code that uses it, imports in cells of their own (the docs build runs every cell that imports)."""
import ast, json, re
from pathlib import Path
import pytest

NBS = sorted(p for p in (Path(__file__).resolve().parents[1]/'nbs').glob('*.ipynb') if p.name != 'index.ipynb')
cells = lambda p: json.loads(p.read_text())['cells']
src = lambda c: ''.join(c['source'])
is_export = lambda c: c['cell_type'] == 'code' and re.search(r'^#\|\s*export\s*$', src(c), re.M)

def public_names(code:str)->list:
    tree = ast.parse('\n'.join(l for l in code.splitlines() if not l.startswith('#|')))
    out = []
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.append(n.name)
        elif isinstance(n, ast.Assign): out += [t.id for t in n.targets if isinstance(t, ast.Name) and t.id.isupper()]
    return [n for n in out if not n.startswith('_')]

def undocumented(path:Path)->list:
    "Public exported names not followed by a markdown cell and a code cell that uses them, before the next export cell."
    cs, bad = cells(path), []
    for i, c in enumerate(cs):
        if not is_export(c): continue
        after = []
        for d in cs[i + 1:]:
            if is_export(d): break
            after.append(d)
        prose = bool(after) and after[0]['cell_type'] == 'markdown'
        for name in public_names(src(c)):
            used = any(d['cell_type'] == 'code' and re.search(rf'\b{name}\b', src(d)) for d in after)
            if not (prose and used): bad.append(name)
    return bad

def mixed_import_cells(path:Path)->list:
    "Code cells that import and also do something else."
    bad = []
    for c in cells(path):
        if c['cell_type'] != 'code' or 'nbdev_export' in src(c): continue
        body = ast.parse('\n'.join(l for l in src(c).splitlines() if not l.startswith(('#|', '%'))) or 'pass').body
        imports = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
        if imports and len(imports) != len(body) and not (is_export(c) and body[0] is imports[0] and src(c).lstrip().startswith('#| export\nfrom __future__')):
            bad.append(src(c).splitlines()[0][:60])
    return bad

@pytest.mark.parametrize('path', NBS, ids=[p.name for p in NBS])
def test_notebook_shape(path):
    assert len(cells(path)) <= 60, f'{path.name} has {len(cells(path))} cells: split it'
    assert undocumented(path) == [], f'{path.name}: exported without prose and a demo or test after them'
    assert mixed_import_cells(path) == [], f'{path.name}: imports share a cell with other code'

def test_the_checks_can_fail(tmp_path):
    nb = lambda *cs: json.dumps({'cells': [{'cell_type': t, 'source': s, 'metadata': {}, **({'outputs': []} if t == 'code' else {})} for t, s in cs]})
    (tmp_path/'a.ipynb').write_text(nb(('code', '#| export\ndef f(): pass'), ('code', 'f()')))
    (tmp_path/'b.ipynb').write_text(nb(('code', '#| export\ndef f(): pass'), ('markdown', 'f does x'), ('code', 'f()')))
    (tmp_path/'c.ipynb').write_text(nb(('code', 'import os\nx = 1'),))
    assert undocumented(tmp_path/'a.ipynb') == ['f'] and undocumented(tmp_path/'b.ipynb') == []
    assert mixed_import_cells(tmp_path/'c.ipynb') == ['import os']
