"""Tiny CLIP and SigLIP checkpoints load through `load_model` with HF_HUB_OFFLINE=1 (set before any hub
code is imported, so in a fresh process), and clipnb's cosines equal a direct transformers computation."""
import subprocess, sys, textwrap, os

SCRIPT = textwrap.dedent('''
    import os, sys, tempfile
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    import torch, torch.nn.functional as F
    from pathlib import Path
    from PIL import Image
    from huggingface_hub import constants
    assert constants.HF_HUB_OFFLINE, "offline mode not in effect"
    from clipnb.synthetic import make_tiny_clip, make_tiny_siglip, write_shapes, make_shapes
    from clipnb.models import load_model
    tmp = Path(tempfile.mkdtemp())
    files = write_shapes(tmp/"s", n_images=16, seed=3)
    meta = make_shapes(16, seed=3)
    paths = [files.images/f"{i}.png" for i in meta.image_id]
    caps = [c[1] for c in meta.captions]
    for make in (make_tiny_clip, make_tiny_siglip):
        m = load_model(make(tmp/make.__name__))
        ours = m.score(paths, caps, batch_size=5)
        pad = "max_length" if m.is_siglip else True
        b = m.processor(text=caps, images=[Image.open(p).convert("RGB") for p in paths], padding=pad, truncation=True, return_tensors="pt")
        with torch.no_grad():
            kw = {"input_ids": b["input_ids"]} if m.is_siglip else {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]}
            i = m.model.get_image_features(pixel_values=b["pixel_values"]); t = m.model.get_text_features(**kw)
        i, t = [F.normalize(x if torch.is_tensor(x) else x.pooler_output, dim=-1) for x in (i, t)]
        diff = (ours - (i * t).sum(-1)).abs().max().item()
        assert diff < 1e-5, (m.family, diff)
        print(m.family, "max diff", diff)
    # a hub id cannot be fetched offline: a clear error, not a hang
    try: load_model("openai/clip-vit-base-patch32"); sys.exit("loaded a hub model offline?")
    except ValueError as e: assert "--model_name 'openai/clip-vit-base-patch32': cannot load it" in str(e) and chr(10) not in str(e); print("hub id offline: clear error")
''')

def test_offline_load_and_cosine_match():
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', HF_DATASETS_OFFLINE='1')
    r = subprocess.run([sys.executable, '-c', SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'clip max diff' in r.stdout and 'siglip max diff' in r.stdout and 'clear error' in r.stdout
