"""The decode paths of `score_pairs` end to end on CPU: `draft` and `gpu` (nvjpeg replaced by `cpu_jpeg_decoder`, as marked),
against `exact`: every row accounted for, the same errors, cosines close; and what `--decode gpu` says on a machine without nvjpeg.
"""
import subprocess, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from clipnb.synthetic import write_shapes
from clipnb.models import load_model
from clipnb.shapes import shapes_model_path
from clipnb.score import score_pairs
from clipnb.decode import cpu_jpeg_decoder
from clipnb.core import InputError
from clipnb.stream import write_tar

@pytest.fixture(scope='module')
def table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('decode')
    files = write_shapes(tmp/'shapes', n_images=40, seed=4, fmt='jpg', image_size=(160, 120))
    t = pd.read_csv(files.urls_csv)
    jpg = Path(t.url[0].removeprefix('file://'))
    Image.open(jpg).save(tmp/'a.png'); Image.open(jpg).convert('CMYK').save(tmp/'cmyk.jpg')
    b = jpg.read_bytes(); (tmp/'cut.jpg').write_bytes(b[:int(len(b) * 0.7)])
    extra = pd.DataFrame(dict(url=[(tmp/n).as_uri() for n in ('a.png', 'cmyk.jpg', 'cut.jpg', 'missing.jpg')], caption=['a png', 'a cmyk jpeg', 'a cut jpeg', 'a lost file'],
                              label=[1, 1, 1, 1], image_id=['png', 'cmyk', 'cut', 'lost']))
    pd.concat([t, pd.concat([t.iloc[:5]])]).pipe(lambda d: pd.concat([d, extra])).to_csv(tmp/'pairs.csv', index=False)  # repeats too
    return tmp, load_model(shapes_model_path(), device='cpu')

def _score(tmp, m, decode, **kw):
    out = tmp/f'{decode}.csv'
    st = score_pairs(tmp/'pairs.csv', m, out, num_workers=2, batch_size=16, progress=False, decode=decode, overwrite=True, **kw)
    return st, pd.read_csv(out, keep_default_na=False)

def test_draft_and_gpu_paths_account_for_every_row_as_exact_does(table):
    tmp, m = table
    _, ex = _score(tmp, m, 'exact')
    st_d, dr = _score(tmp, m, 'draft')
    st_g, gp = _score(tmp, m, 'gpu', jpeg_decoder=cpu_jpeg_decoder)  # cpu_jpeg_decoder stands in for nvjpeg: no GPU here
    assert len(ex) == len(dr) == len(gp) == 49
    for r in (dr, gp):
        assert r.status.tolist() == ex.status.tolist() and r.error.str.split(':').str[0].tolist() == ex.error.str.split(':').str[0].tolist()
        assert r.drop(columns=['cosine', 'clipscore']).equals(ex.drop(columns=['cosine', 'clipscore']))
    assert ex.status.value_counts().to_dict() == {'ok': 47, 'error': 2}  # the cut JPEG and the missing file
    ok = ex.status.eq('ok')
    dcos_gpu = (gp.cosine[ok].astype(float) - ex.cosine[ok].astype(float)).abs()
    assert 0 < dcos_gpu.max() < 0.02, dcos_gpu.max()  # the device resize moves pixels a little (30_decode has the levels)
    assert st_g['gpu_decode'] == dict(decoded=40, fallback=0, cpu=2, failed=1), st_g['gpu_decode']  # the 40 distinct shapes JPEGs (repeats encoded once); PNG and CMYK on the CPU; the cut one fails
    assert st_d['decode'] == 'draft' and st_g['decode'] == 'gpu'
    assert (dr.cosine[ok].astype(float) - ex.cosine[ok].astype(float)).abs().max() < 0.02

def test_a_decode_path_is_part_of_what_produced_the_results(table):
    tmp, m = table
    _score(tmp, m, 'exact')
    with pytest.raises(InputError, match='decode'):  # resuming exact results with another decode path is refused
        score_pairs(tmp/'pairs.csv', m, tmp/'exact.csv', num_workers=0, progress=False, decode='draft')

def test_gpu_decode_without_nvjpeg_says_so(table):
    tmp, m = table
    with pytest.raises(InputError, match='--decode gpu needs torchvision'): score_pairs(tmp/'pairs.csv', m, tmp/'x.csv', progress=False, decode='gpu')
    with pytest.raises(InputError, match='--decode fast: one of exact, draft, gpu'): score_pairs(tmp/'pairs.csv', m, tmp/'x.csv', progress=False, decode='fast')

def test_gpu_path_over_webdataset_shards_sends_embedded_jpegs_and_starts_workers_once(table, tmp_path):
    """Three WebDataset shards of 15 samples (40 JPEGs, a PNG, a CMYK JPEG, a cut JPEG, a sample without an image and two repeats),
    scored by one call with two workers: the embedded JPEGs travel as bytes to the (stand-in) batch decoder, every row is accounted
    for as the exact path accounts for it, and the workers start once for the three shards."""
    tmp, m = table
    t = pd.read_csv(tmp/'pairs.csv').iloc[:45]  # 40 JPEGs and 5 repeats
    data = [Path(u.removeprefix('file://')).read_bytes() for u in t.url]
    data += [(tmp/n).read_bytes() for n in ('a.png', 'cmyk.jpg', 'cut.jpg')] + [None]
    caps = t.caption.tolist() + ['a png', 'a cmyk jpeg', 'a cut jpeg', 'no image']
    (tmp_path/'wds').mkdir()
    for k in range(0, len(data), 17):  # 49 samples: 17 + 17 + 15
        write_tar(tmp_path/'wds'/f'{k // 17:05d}.tar', [(f'{i:05d}', {'txt': caps[i].encode(), **({'jpg': data[i]} if data[i] else {})}) for i in range(k, min(k + 17, len(data)))])
    kw = dict(batch_size=8, num_workers=2, progress=False, number_sample_per_shard=17)
    ex_st = score_pairs(tmp_path/'wds', m, tmp_path/'exact.csv', **kw)
    st = score_pairs(tmp_path/'wds', m, tmp_path/'gpu.csv', decode='gpu', jpeg_decoder=cpu_jpeg_decoder, **kw)  # cpu_jpeg_decoder stands in for nvjpeg
    ex, gp = (pd.read_csv(tmp_path/f, keep_default_na=False) for f in ('exact.csv', 'gpu.csv'))
    assert len(gp) == len(ex) == 49 and st['shards'] == 3
    assert gp.status.tolist() == ex.status.tolist() and gp.error.str.split(':').str[0].tolist() == ex.error.str.split(':').str[0].tolist()
    assert ex.error.str.split(':').str[0].tolist()[-2:] == ['bad_image', 'no_image']
    assert st['gpu_decode'] == dict(decoded=45, fallback=0, cpu=2, failed=1), st['gpu_decode']  # each sample's JPEG (a sample is its own image); PNG, CMYK; the cut one
    assert (st['worker_starts'], ex_st['worker_starts']) == (2, 2)
    ok = ex.status.eq('ok')
    assert (gp.cosine[ok].astype(float) - ex.cosine[ok].astype(float)).abs().max() < 0.02
