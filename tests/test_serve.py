"""`clipnb_serve` as a backend runs it: a real uvicorn on 127.0.0.1, 50 concurrent clients x 20 requests all answered and equal
to `clipnb_predict` on the same pairs, every bad input a 4xx JSON error, and the server still serving afterwards."""
import io, os, socket, subprocess, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import httpx
import pandas as pd
import pytest
from conftest import OFFLINE_ENV, bin_path
from clipnb.dist import free_port
from clipnb.testing import ImageServer, wait_for_health

ENV = OFFLINE_ENV

@pytest.fixture(scope='module')
def model(tmp_path_factory):
    "A head trained for two epochs on a frozen shapes CLIP, and 40 test pairs with clipnb_predict's answers."
    from clipnb.testing import labelled_splits
    from clipnb.shapes import shapes_model_path
    from clipnb.classify import ClassifierConfig, train_classifier
    d = tmp_path_factory.mktemp('serve')
    files, paths = labelled_splits(d/'data', n_images=60, seed=6)
    train_classifier(ClassifierConfig(str(paths['train']), str(paths['validation']), str(d/'run'), str(shapes_model_path()),
                                      epochs=2, batch_size=32, freeze_backbone=True, device='cpu'))
    pairs = pd.read_csv(paths['test']).head(40).reset_index(drop=True)
    pairs[['image_path', 'text']].to_csv(files.root/'pairs.csv', index=False)
    r = subprocess.run([bin_path('clipnb_predict'), '--model', str(d/'run'/'best_model'), '--csv', str(files.root/'pairs.csv'),
                        '--output', str(d/'pred.csv'), '--device', 'cpu'], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    return dict(best=d/'run'/'best_model', root=files.root, pairs=pairs, expected=pd.read_csv(d/'pred.csv'))

@pytest.fixture(scope='module')
def server(model):
    port = free_port()
    p = subprocess.Popen([bin_path('clipnb_serve'), '--model', str(model['best']), '--port', str(port), '--device', 'cpu', '--max_upload_mb', '1',
                          '--max_texts', '8', '--allow_image_url', '--fetch_timeout', '3'], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f'http://127.0.0.1:{port}'
    wait_for_health(url, p, timeout=60)
    yield url, p
    p.terminate(); p.wait(20)

def _post(client, url, model, i):
    r = model['pairs'].iloc[i % len(model['pairs'])]
    data = (model['root']/r.image_path).read_bytes()
    return i, client.post(url + '/score', files={'image': ('x.png', data, 'image/png')}, data={'text': r.text}, timeout=120)

def test_health(server, model):
    url, _ = server
    h = httpx.get(url + '/health').json()
    assert h['model'] == str(model['best']) and h['threshold'] == pytest.approx(model['expected'].threshold[0]) and h['head'] is True

def test_fifty_concurrent_clients_equal_clipnb_predict(server, model):
    url, proc = server
    def client(c):
        with httpx.Client() as cl: return [_post(cl, url, model, c * 20 + k) for k in range(20)]
    with ThreadPoolExecutor(50) as ex: answers = [a for got in ex.map(client, range(50)) for a in got]
    assert len(answers) == 1000 and all(r.status_code == 200 for _, r in answers), [r.text for _, r in answers if r.status_code != 200][:3]
    exp = model['expected']
    for i, r in answers:
        j, got = i % len(model['pairs']), r.json()
        assert got['probability'] == pytest.approx(exp.probability[j], abs=1e-4) and got['similarity_score'] == pytest.approx(exp.similarity_score[j], abs=1e-4)
        assert got['is_match'] == bool(exp.is_match[j]) or abs(exp.probability[j] - exp.threshold[j]) < 1e-4
    assert proc.poll() is None

def _png_bytes(size=(64, 64)):
    from PIL import Image
    b = io.BytesIO(); Image.new('RGB', size, 'red').save(b, 'PNG'); return b.getvalue()

def test_every_bad_input_gets_its_4xx_and_the_server_keeps_serving(server, model):
    url, proc = server
    img = ('x.png', _png_bytes(), 'image/png')
    with ImageServer() as srv:
        cases = {
            'no image': (httpx.post(url + '/score', data={'text': 'a'}), 422, 'missing_field'),
            'no text': (httpx.post(url + '/score', files={'image': img}), 422, 'missing_field'),
            'empty text': (httpx.post(url + '/score', files={'image': img}, data={'text': ' '}), 422, 'empty_text'),
            'not an image': (httpx.post(url + '/score', files={'image': ('x.png', b'hello world', 'image/png')}, data={'text': 'a'}), 422, 'not_image'),
            'truncated image': (httpx.post(url + '/score', files={'image': ('x.png', _png_bytes()[:60], 'image/png')}, data={'text': 'a'}), 422, 'bad_image'),
            'too many texts': (httpx.post(url + '/score', files={'image': img}, data={'text': list('abcdefghi')}), 422, 'too_many_texts'),
            'too large': (httpx.post(url + '/score', files={'image': ('big.png', os.urandom(3 * 2**20), 'image/png')}, data={'text': 'a'}), 413, 'too_large'),
            'both image and url': (httpx.post(url + '/score', files={'image': img}, data={'text': 'a', 'image_url': srv.url('img/1.jpg')}), 422, 'conflicting_fields'),
            'file url': (httpx.post(url + '/score', data={'text': 'a', 'image_url': 'file:///etc/passwd'}), 422, 'bad_url'),
            'url 404': (httpx.post(url + '/score', data={'text': 'a', 'image_url': srv.url('status/404')}), 400, 'http_404'),
            'url not an image': (httpx.post(url + '/score', data={'text': 'a', 'image_url': srv.url('html/1')}), 400, 'not_image'),
        }
        good_url = httpx.post(url + '/score', data={'text': ['a', 'b'], 'image_url': srv.url('img/1.jpg')}, timeout=30)
    got = {k: (r.status_code, r.json().get('error')) for k, (r, _, _) in cases.items()}
    assert got == {k: (s, e) for k, (_, s, e) in cases.items()}, got
    assert all(r.json().get('detail') for r, _, _ in cases.values())
    assert good_url.status_code == 200 and len(good_url.json()['results']) == 2
    i, r = _post(httpx, url, model, 0)
    assert r.status_code == 200 and proc.poll() is None
