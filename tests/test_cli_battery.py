"""Bad input to every command, as a user types it: one line on stderr naming the file, column, row or flag, exit status 2,
no traceback, and nothing done (checked before any work)."""
import os, subprocess
from pathlib import Path
import pandas as pd
import pytest
from conftest import bin_path
from clipnb.synthetic import write_shapes
from clipnb.shapes import shapes_model_path

MODEL = str(shapes_model_path())
ENV = dict(os.environ, HF_HUB_OFFLINE='1', TOKENIZERS_PARALLELISM='false')

@pytest.fixture(scope='module')
def t(tmp_path_factory):
    d = tmp_path_factory.mktemp('battery')
    files = write_shapes(d/'shapes', n_images=12, seed=2)
    pd.DataFrame({'url': ['http://x/a.jpg'], 'desc': ['a dog']}).to_csv(d/'nocap.csv', index=False)
    pd.DataFrame({'caption': ['a dog'], 'label': [1]}).to_csv(d/'nourl.csv', index=False)
    (d/'a_file').write_text('not a folder')
    (d/'unknown.yaml').write_text('csv_path: x.csv\nresize: 800\n')
    (d/'badvalue.yaml').write_text('batch_size: ten\n')
    lab = pd.read_csv(files.labels_csv); lab.loc[2, 'label'] = 7; lab.to_csv(d/'badlabel.csv', index=False)
    lab[['image_path', 'text']].to_csv(d/'nolabel.csv', index=False)
    return dict(d=d, badlabel=d/'badlabel.csv', nolabel=d/'nolabel.csv', urls=files.urls_csv, labels=files.labels_csv, tsv=files.tsv, hf=files.hf, missing=d/'missing.csv', nocap=d/'nocap.csv',
                nourl=d/'nourl.csv', file=d/'a_file', nomodel=d/'no-such-model', out=d/'out', unknown=d/'unknown.yaml', badvalue=d/'badvalue.yaml')

# (command, arguments, what the one line must name)
CASES = [
    ('clipnb_score', ['--csv_path', '{missing}'], 'missing.csv: no such file'),
    ('clipnb_score', ['--csv_path', '{nocap}'], 'nocap.csv: no text column (found: url, desc)'),
    ('clipnb_score', ['--csv_path', '{urls}', '--batch_size', '0', '--model_name', MODEL], '--batch_size 0'),
    ('clipnb_score', ['--csv_path', '{urls}', '--scores', 'softmax'], '--scores softmax'),
    ('clipnb_score', ['--csv_path', '{urls}', '--model_name', '{nomodel}'], "--model_name '{nomodel}': cannot load it"),
    ('clipnb_score', ['--csv_path', '{urls}', '--world_size', '2'], '--world_size 2 without --rank'),
    ('clipnb_score', ['--output_dir', '{out}'], '--csv_path is required'),
    ('clipnb_score', ['--config', '{missing}.yaml'], 'missing.csv.yaml: no such file'),
    ('clipnb_score', ['--config', '{unknown}'], 'unknown.yaml: unknown key resize'),
    ('clipnb_score', ['--config', '{badvalue}', '--csv_path', '{urls}'], "badvalue.yaml: batch_size: 'ten' is not int"),
    ('clipnb_score', ['--csv_path', '{urls}', '--model_type', 'vit', '--output_dir', '{out}/mt'], '--model_type vit: one of clip, siglip'),
    ('clipnb_score', ['--csv_path', '{urls}', '--model_name', MODEL, '--model_type', 'siglip', '--output_dir', '{out}/mt'], 'is a clip model'),
    ('clipnb_score', ['--csv_path', '{urls}', '--image_base_path', '{out}/nowhere', '--model_name', MODEL, '--output_dir', '{out}/ib'], 'nowhere: no such folder'),
    ('clipnb_score', ['--csv_path', '{urls}', '--distributed', '--world_size', '1', '--output_dir', '{out}/d'], '--distributed needs --world_size of 2 or more'),
    ('clipnb_score', ['--csv_path', '{urls}', '--local-rank=-1'], '--local-rank -1: must be 0 or more'),
    ('clipnb_download', ['--csv_path', '{missing}'], 'missing.csv: no such file'),
    ('clipnb_download', ['--csv_path', '{nourl}'], 'nourl.csv: no url column (found: caption, label)'),
    ('clipnb_download', ['--csv_path', '{urls}', '--image_size', '0', '--image_dir', '{out}/dl'], '--image_size 0'),
    ('clipnb_download', ['--csv_path', '{urls}', '--rank', '3', '--world_size', '2', '--image_dir', '{out}/dl'], '--rank 3 is not in 0..1'),
    ('clipnb_download', ['--csv_path', '{urls}', '--max_workers', 'many'], "argument --max_workers: invalid int value: 'many'"),
    ('clipnb_validate', ['{missing}'], 'missing.csv: no such file'),
    ('clipnb_validate', ['{urls}', '--columns', 'nope:text'], "columns={'nope': 'text'} names ['nope']"),
    ('clipnb_validate', ['{urls}', '--columns', 'caption=text'], "--columns 'caption=text'"),
    ('clipnb_validate', [], 'give the table'),
    ('clipnb_profile', ['--csv_path', '{missing}', '--model_name', MODEL], 'missing.csv: no such file'),
    ('clipnb_profile', ['--csv_path', '{nocap}', '--model_name', MODEL], 'nocap.csv: no text column'),
    ('clipnb_profile', ['--csv_path', '{urls}', '--model_name', MODEL, '--batch_sizes', '1,x'], "--batch_sizes '1,x'"),
    ('clipnb_profile', ['--csv_path', '{urls}', '--model_name', MODEL, '--dtype', 'fp8'], "dtype='fp8'"),
    ('clipnb_profile', ['--config', '{unknown}'], 'unknown.yaml: unknown key resize'),
    ('clipnb_download', ['--csv_path', '{urls}', '--local_rank', 'x'], "argument --local_rank/--local-rank: invalid int value: 'x'"),
    ('clipnb', ['scroe', '--csv_path', '{urls}'], "'scroe' is not a command; one of: score"),
    ('clipnb', ['--local-rank=0'], 'no command given; one of: score'),
    ('clipnb_demo', ['--model_name', '{nomodel}', '--output_dir', '{out}/demo'], "--model_name '{nomodel}': cannot load it"),
    ('clipnb_demo', ['--n_images', '0', '--output_dir', '{out}/demo'], '--n_images 0'),
    ('clipnb_demo', ['--output_dir', '{file}'], 'a_file: is a file, not a folder'),
    ('clipnb_demo', ['--device', 'tpu', '--output_dir', '{out}/demo'], "device='tpu' is not a device"),
    ('clipnb_eval_retrieval', ['--dataset', '{missing}', '--model_name', MODEL], 'missing.csv: no such file'),
    ('clipnb_eval_retrieval', ['--csv_path', '{nocap}', '--model_name', MODEL], 'nocap.csv: no text column'),
    ('clipnb_eval_retrieval', ['--dataset', '{hf}', '--model_name', '{nomodel}', '--output_dir', '{out}/ev'], "--model_name '{nomodel}': cannot load it"),
    ('clipnb_eval_retrieval', ['--dataset', '{hf}', '--model_name', MODEL, '--eval_bs', '0'], '--batch_size 0'),
    ('clipnb_train_contrastive', ['--dataset', '{missing}', '--model_name', MODEL, '--output_dir', '{out}/tr'], 'missing.csv: no such file'),
    ('clipnb_train_contrastive', ['--dataset', '{nocap}', '--model_name', MODEL, '--output_dir', '{out}/tr'], 'nocap.csv: no text column'),
    ('clipnb_train_contrastive', ['--dataset', '{tsv}', '--model_name', MODEL, '--train_bs', '1'], '--train_bs 1'),
    ('clipnb_train_contrastive', ['--dataset', '{tsv}', '--model_name', MODEL, '--fp16', '--bf16'], 'argument --bf16: not allowed with argument --fp16'),
    ('clipnb_train_contrastive', ['--dataset', '{tsv}', '--model_name', '{nomodel}', '--output_dir', '{out}/tr'], "--model_name '{nomodel}': cannot load it"),
    ('clipnb_train_shapes', ['--output_dir', '{file}'], 'a_file: is a file, not a folder'),
    ('clipnb_train_shapes', ['--export_to', '{file}', '--output_dir', '{out}/sh'], '--export_to'),
    ('clipnb_train_shapes', ['--max_steps', 'x'], "argument --max_steps: invalid int value: 'x'"),
    ('clipnb_train_shapes', ['--device', 'tpu', '--output_dir', '{out}/sh'], "device='tpu' is not a device"),
    ('clipnb_train_classifier', ['--train_csv', '{missing}', '--val_csv', '{labels}', '--model_name', MODEL, '--output_dir', '{out}/cls'], 'missing.csv: no such file'),
    ('clipnb_train_classifier', ['--train_csv', '{badlabel}', '--val_csv', '{labels}', '--model_name', MODEL, '--output_dir', '{out}/cls'], 'rows [2] have a label that is not 0 or 1'),
    ('clipnb_train_classifier', ['--train_csv', '{labels}', '--val_csv', '{nolabel}', '--model_name', MODEL, '--output_dir', '{out}/cls'], 'nolabel.csv: no label column'),
    ('clipnb_train_classifier', ['--train_csv', '{labels}', '--val_csv', '{labels}', '--batch_size', '0'], '--batch_size 0'),
    ('clipnb_train_classifier', ['--train_csv', '{labels}', '--val_csv', '{labels}', '--negatives', 'easy:1'], "'easy' is not one of random, hard, attribute"),
    ('clipnb_train_classifier', ['--train_csv', '{labels}', '--val_csv', '{labels}', '--criterion', 'best'], "--criterion 'best': choose from"),
    ('clipnb_train_classifier', ['--train_csv', '{labels}'], '--train_csv and --val_csv are required'),
    ('clipnb_predict', [], 'give --image and --text for one pair, or --csv'),
    ('clipnb_predict', ['--model', MODEL, '--image', '{missing}.png', '--text', 'a dog'], 'missing.csv.png: no such file'),
    ('clipnb_predict', ['--model', MODEL, '--csv', '{labels}', '--output', '{out}/p.csv'], 'a plain checkpoint has no tuned threshold; give --threshold'),
    ('clipnb_predict', ['--model', '{nomodel}', '--csv', '{labels}', '--threshold', '0.3'], "--model_name '{nomodel}': cannot load it"),
    ('clipnb_serve', ['--port', '0', '--model', MODEL], '--port 0: must be 1..65535'),
    ('clipnb_serve', ['--max_batch', '0', '--model', MODEL], '--max_batch 0'),
    ('clipnb_serve', [], 'give the model with --model, or set CLIP_FINE_TUNED_MODEL_PATH'),
    ('clipnb_serve', ['--model', MODEL], 'a plain checkpoint has no tuned threshold'),
    ('clipnb_simclip', ['--batch-size', '16'], '--train_tsv is required'),
    ('clipnb_simclip', ['--train_tsv', '{tsv}', '--synthesis', '--synthesis-prop', '2/1', '--model-name', MODEL], "--synthesis-prop '2/1': must be in [0, 1]"),
    ('clipnb_simclip', ['--train_tsv', '{tsv}', '--num-clusters', '2', '--cluster-size', '4'], 'give --num-clusters or --cluster-size, not both'),
    ('clipnb_simclip', ['--train_tsv', '{tsv}', '--warmup-prop'], '--warmup-prop needs --synthesis'),
    ('clipnb_simclip', ['--train_tsv', '{tsv}', '--synthesis', '--online-sim', 'both', '--model-name', MODEL, '--save-dir', '{out}/sim'], "--online-sim 'both'"),
    ('clipnb_score', ['--csv_path', '{urls}', '--output_format', 'webdataset', '--model_name', MODEL, '--output_dir', '{out}/of'], '--output_format webdataset: one of csv, parquet'),
    ('clipnb_score', ['--csv_path', '{out}/nothing-*.tar', '--model_name', MODEL, '--output_dir', '{out}/glob'], 'nothing-*.tar: the pattern matches no file'),
    ('clipnb_download', ['--csv_path', '{urls}', '--output_format', 'tfrecord', '--output_dir', '{out}/dl1'], '--output_format tfrecord: one of files, webdataset, parquet'),
    ('clipnb_download', ['--csv_path', '{urls}', '--engine', 'ray', '--output_dir', '{out}/dl2'], '--engine ray: only with --output_format webdataset or parquet'),
    ('clipnb_download', ['--csv_path', '{urls}', '--output_format', 'webdataset', '--engine', 'spark', '--output_dir', '{out}/dl3'], '--engine spark: one of local, ray'),
    ('clipnb_curate', ['--output_dir', '{out}/c0'], '--results is required'),
    ('clipnb_curate', ['--results', '{missing}', '--min_score', '0.2', '--output_dir', '{out}/c1'], 'missing.csv: no such results file'),
    ('clipnb_curate', ['--results', '{urls}', '--output_dir', '{out}/c2'], 'give exactly one of --min_score, --quantile, --top_fraction (got none)'),
    ('clipnb_curate', ['--results', '{urls}', '--quantile', '1.5', '--score', 'label', '--output_dir', '{out}/c3'], '--quantile 1.5: must be in [0, 1]'),
    ('clipnb_curate', ['--results', '{urls}', '--min_score', '0.2', '--dedup_threshold', '0.95', '--output_dir', '{out}/c4'], '--dedup_threshold needs --model_name'),
]

@pytest.mark.parametrize('cmd,args,says', CASES, ids=[f'{c}-{i}' for i, (c, _, _) in enumerate(CASES)])
def test_bad_input(t, cmd, args, says):
    def fill(s):
        for k, v in t.items(): s = s.replace('{' + k + '}', str(v))
        return s
    r = subprocess.run([bin_path(cmd), *map(fill, args)], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 2, (r.returncode, r.stdout[-1000:], r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert lines[0].startswith(f'{cmd}: error: ') and fill(says) in lines[0], lines[0]

def test_every_command_has_at_least_three_cases():
    from clipnb.cli import COMMANDS
    counts = pd.Series([c for c, _, _ in CASES]).value_counts()
    assert all(counts.get(c, 0) >= 3 for c in COMMANDS), counts.to_dict()
