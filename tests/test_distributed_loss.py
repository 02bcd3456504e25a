"""Under torch.distributed (gloo on CPU), the gathered CLIP and SigLIP losses on N ranks equal the
single-process loss on the concatenated batch, and DDP-averaged gradients equal its gradients."""
import logging, os
from pathlib import Path
import pytest
import torch
import torch.multiprocessing as mp
from clipnb.loss import ClipLoss, SigLipLoss
from clipnb.dist import free_port
from clipnb.testing import ddp_loss_check, tiny_contrastive_problem, run_ddp_check, spawn_ranks

@pytest.mark.parametrize('kind', ['clip', 'siglip'])
@pytest.mark.parametrize('world_size', [2, 3])
def test_ranks_equal_one_process(tmp_path, kind, world_size):
    spawn_ranks(ddp_loss_check, (world_size, free_port(), str(tmp_path), kind), world_size, tmp_path)
    enc, scale, bias, xi, xt, ids = tiny_contrastive_problem()
    fi, ft = enc(xi, xt)
    loss = (ClipLoss() if kind == 'clip' else SigLipLoss())(fi, ft, scale, bias, image_ids=ids)
    loss.backward()
    for r in range(world_size):
        got = torch.load(tmp_path/f'rank{r}.pt')
        assert torch.allclose(got['loss'], loss.detach(), atol=1e-6), (r, got['loss'], loss)
        for k, p in enc.named_parameters():
            assert torch.allclose(got['grads'][k], p.grad, atol=1e-6), (r, k, (got['grads'][k] - p.grad).abs().max())

@pytest.mark.parametrize('kind', ['clip', 'siglip'])
def test_without_gather_the_ranks_differ(tmp_path, kind):
    "The negative control: 2 ranks with gathering off compute another loss and other gradients, so the check above can fail."
    on, off = run_ddp_check(2, kind, gather=True, out_dir=tmp_path/'on'), run_ddp_check(2, kind, gather=False, out_dir=tmp_path/'off')
    assert on['loss'] < 1e-6 and on['grad'] < 1e-6
    assert off['loss'] > 0.1 and off['grad'] > 1e-3, off

def _abort(rank, out_dir, after_barrier):
    "Spawn target: rank 0 aborts (as gloo's teardown does), after or before the ranks' last barrier."
    if after_barrier: (Path(out_dir)/f'passed{rank}').touch()
    if rank == 0: os.abort()

def test_a_rank_that_dies_after_the_last_barrier_keeps_the_results(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, 'clipnb.testing'): spawn_ranks(_abort, (str(tmp_path), True), 2, tmp_path)
    assert 'rank 0 died by SIGABRT after rank(s)' in caplog.text, caplog.text

def test_a_rank_that_dies_before_the_last_barrier_fails(tmp_path):
    with pytest.raises(mp.ProcessExitedException, match='SIGABRT'): spawn_ranks(_abort, (str(tmp_path), False), 2, tmp_path)
