"""Bad-input battery for pair tables: each malformed file gives a `TableError` that names the file and
the problem, and each awkward-but-valid file reads exactly."""
import json
import pandas as pd
import pytest
from PIL import Image
from clipnb.data import TableError, read_pairs, read_table
from clipnb.validate import validate

# (file name, bytes, expected message fragment)
MALFORMED = [
    ('empty.csv', b'', 'is empty (0 bytes)'),
    ('blank.csv', b'  \n\n \n', 'is empty (only whitespace)'),
    ('header_only.csv', b'url,caption\n', 'has a header (url, caption) but no rows'),
    ('semicolon.csv', b'url;caption\nhttp://x/a.jpg;a dog\n', "pass sep=';'"),
    ('tabs.csv', b'url\tcaption\nhttp://x/a.jpg\ta dog\n', "pass sep='\\t'"),
    ('latin1.csv', 'url,caption\nhttp://x/a.jpg,a caf\xe9\n'.encode('latin-1'), 'is not valid utf-8 at line 2'),
    ('ragged.csv', b'url,caption\nhttp://x/a.jpg,a dog\nhttp://x/b.jpg,a cat, sitting\n', 'line 3 has 3 fields but the header has 2'),
    ('open_quote.csv', b'url,caption\nhttp://x/a.jpg,"a dog\nhttp://x/b.jpg,a cat\n', 'is never closed'),
    ('binary.csv', b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR', 'contains NUL bytes'),
    ('no_caption.csv', b'url,desc\nhttp://x/a.jpg,a dog\n', 'no text column (found: url, desc)'),
    ('no_image.csv', b'caption,label\na dog,1\n', 'no url or image_path column (found: caption, label)'),
    ('bad.jsonl', b'{"url": "http://x/a.jpg", "caption": "a"}\n{"url": "http://x/b.jpg", caption: b}\n', 'line 2 is not valid JSON'),
    ('list.jsonl', b'["http://x/a.jpg", "a"]\n', 'line 1 is a JSON list, not an object'),
    ('corrupt.parquet', b'PAR1 this is not parquet PAR1', 'is not a readable Parquet file'),
    ('pairs.xlsx', b'PK\x03\x04', "unknown table format '.xlsx'"),
    ('commas.tsv', b'a.png,a red circle\n', 'line 1 has no tab'),
]

@pytest.mark.parametrize('name,data,msg', MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed(tmp_path, name, data, msg):
    p = tmp_path/name
    p.write_bytes(data)
    with pytest.raises(TableError) as e: read_pairs(p)
    assert str(e.value).startswith(str(p)) or str(e.value).startswith(p.name), str(e.value)
    assert msg in str(e.value), str(e.value)

def test_missing_file_and_folder(tmp_path):
    with pytest.raises(TableError, match='no such file'): read_pairs(tmp_path/'nope.csv')
    (tmp_path/'dir.csv').mkdir()
    with pytest.raises(TableError, match='is a folder'): read_pairs(tmp_path/'dir.csv')

def test_bom_is_dropped(tmp_path):
    p = tmp_path/'bom.csv'
    p.write_bytes('\ufeffurl,caption\nhttp://x/a.jpg,a dog\n'.encode('utf-8'))
    pt = read_pairs(p)
    assert pt.df.columns.tolist()[:3] == ['row', 'url', 'text'] and pt.df.text[0] == 'a dog'

def test_quoted_newlines_commas_quotes(tmp_path):
    p = tmp_path/'quoted.csv'
    p.write_text('url,caption\r\nhttp://x/a.jpg,"a dog, running\non grass"\r\nhttp://x/b.jpg,"say ""cheese"""\r\n', newline='')
    assert read_pairs(p).df.text.tolist() == ['a dog, running\non grass', 'say "cheese"']

def test_long_and_unicode_captions(tmp_path):
    caps = ['word ' * 40000, 'un chat noir 🐈‍⬛ sur un toit', '屋根の上の黒猫', 'قطة سوداء', 'NA', 'null']
    p = tmp_path/'uni.csv'
    pd.DataFrame({'url': [f'http://x/{i}.jpg' for i in range(len(caps))], 'caption': caps}).to_csv(p, index=False)
    got = read_pairs(p).df.text.tolist()
    assert got == caps  # NA and null stay captions, nothing is truncated at read time

def test_same_table_in_every_format(tmp_path):
    recs = [dict(image_path='a.png', text='a red circle', label=1), dict(image_path='a.png', text='a blue box', label=0)]
    df = pd.DataFrame(recs)
    df.to_csv(tmp_path/'t.csv', index=False); df.to_parquet(tmp_path/'t.parquet')
    (tmp_path/'t.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    tables = [read_pairs(tmp_path/f't.{e}').df for e in ('csv', 'parquet', 'jsonl')]
    for t in tables: assert t.text.tolist() == ['a red circle', 'a blue box'] and t.label.astype(int).tolist() == [1, 0]

def test_validate_reports_rows_without_losing_any(tmp_path):
    Image.new('RGB', (4, 4)).save(tmp_path/'ok.png')
    (tmp_path/'trunc.png').write_bytes((tmp_path/'ok.png').read_bytes()[:30])
    p = tmp_path/'v.csv'
    p.write_text('image_path,text,label\nok.png,a,1\ntrunc.png,b,1\nok.png,  ,0\nok.png,c,2\nok.png,a,1\n')
    rep = validate(p)
    assert rep.n_rows == 5
    assert rep.errors[['row', 'problem']].values.tolist() == [[1, 'bad_image'], [2, 'empty_caption'], [3, 'bad_label']]
    assert rep.issues.query("problem == 'duplicate_row'").row.tolist() == [4]
    assert rep.label_counts == {0: 1, 1: 3, 'invalid': 1}

def test_multicaption_tsv_keeps_every_caption(tmp_path):
    p = tmp_path/'c.tsv'
    p.write_text('image\tcaptions\na.png\tone\ttwo\tthree\nb.png\n\nc.png\tfour\n')
    df = read_pairs(p).df
    assert df[['image_path', 'text', 'row']].values.tolist() == [['a.png', 'one', 0], ['a.png', 'two', 0], ['a.png', 'three', 0],
                                                                  ['b.png', '', 1], ['c.png', 'four', 3]]

def test_validate_keeps_max_issues_and_counts_them_all(tmp_path, monkeypatch):
    "Read in shards, a report keeps the first MAX_ISSUES issues however many shards add more, counts all, and report_path has all."
    import clipnb.validate as V
    monkeypatch.setattr(V, 'MAX_ISSUES', 3)
    f = tmp_path/'t.csv'
    f.write_text('url,text\n' + ''.join(f'http://x/{i}.jpg,\n' for i in range(11)))  # 11 empty captions
    rep = V.validate(f, shard_rows=2, report_path=tmp_path/'all.csv')
    assert len(rep.issues) == 3 and rep.issues.row.tolist() == [0, 1, 2]
    assert rep.counts() == {'empty_caption': 11} and rep.n_errors == 11 and len(pd.read_csv(tmp_path/'all.csv')) == 11
    assert any('the report keeps the first 3' in n for n in rep.notes)
