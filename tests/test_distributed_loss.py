"""Under torch.distributed (gloo on CPU), the gathered CLIP and SigLIP losses on N ranks equal the
single-process loss on the concatenated batch, and DDP-averaged gradients equal its gradients."""
import socket
import pytest
import torch
import torch.multiprocessing as mp
from clipnb.loss import ClipLoss, SigLipLoss, ddp_loss_check, tiny_contrastive_problem

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.mark.parametrize('kind', ['clip', 'siglip'])
@pytest.mark.parametrize('world_size', [2, 3])
def test_ranks_equal_one_process(tmp_path, kind, world_size):
    mp.spawn(ddp_loss_check, args=(world_size, free_port(), str(tmp_path), kind), nprocs=world_size, join=True)
    enc, scale, bias, xi, xt, ids = tiny_contrastive_problem()
    fi, ft = enc(xi, xt)
    loss = (ClipLoss() if kind == 'clip' else SigLipLoss())(fi, ft, scale, bias, image_ids=ids)
    loss.backward()
    for r in range(world_size):
        got = torch.load(tmp_path/f'rank{r}.pt')
        assert torch.allclose(got['loss'], loss.detach(), atol=1e-6), (r, got['loss'], loss)
        for k, p in enc.named_parameters():
            assert torch.allclose(got['grads'][k], p.grad, atol=1e-6), (r, k, (got['grads'][k] - p.grad).abs().max())

def test_without_gather_ranks_see_only_local_batch(tmp_path):
    "The check can fail: a loss on the local shard alone differs from the global loss."
    enc, scale, bias, xi, xt, ids = tiny_contrastive_problem()
    fi, ft = enc(xi, xt)
    assert not torch.allclose(ClipLoss()(fi[:6], ft[:6], scale), ClipLoss()(fi, ft, scale))
