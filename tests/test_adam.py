"""The multi-tensor Adam of the mini-batch solver is torch's Adam."""

import torch

from skkernelnet.training import _Adam


def _step_both_and_compare(optimizer, reference, ours, theirs, n_steps):
    """Give both optimizers the same random gradients for n_steps; parameters stay equal."""
    for _ in range(n_steps):
        grads = [torch.randn_like(p) for p in ours]
        for params in (ours, theirs):
            for p, g in zip(params, grads):
                p.grad = g.clone()
        optimizer.step()
        reference.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_adam_matches_torch_optim_adam():
    torch.manual_seed(0)
    start = [torch.randn(5, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    optimizer = _Adam(ours, learning_rate=0.01, betas=(0.8, 0.99))
    reference = torch.optim.Adam(theirs, lr=0.01, betas=(0.8, 0.99))
    _step_both_and_compare(optimizer, reference, ours, theirs, n_steps=30)
    optimizer.zero_grad()
    assert all(p.grad is None for p in ours)


def test_adam_treats_a_missing_gradient_as_zero():
    p = torch.ones(3, requires_grad=True)
    q = torch.ones(3, requires_grad=True)
    optimizer = _Adam([p, q], learning_rate=0.1)
    p.grad = torch.ones(3)
    optimizer.step()  # q has no gradient: it stays put, p moves by the learning rate
    torch.testing.assert_close(q.detach(), torch.ones(3))
    torch.testing.assert_close(p.detach(), torch.full((3,), 0.9))


def test_fused_and_multi_tensor_updates_agree():
    torch.manual_seed(1)
    start = [torch.randn(6, 2, dtype=torch.float64), torch.randn(3, dtype=torch.float64)]
    fused = [p.clone() for p in start]
    plain = [p.clone() for p in start]
    a, b = _Adam(fused, learning_rate=0.05), _Adam(plain, learning_rate=0.05)
    b._fused = False
    for _ in range(20):
        grads = [torch.randn_like(p) for p in start]
        for params in (fused, plain):
            for p, g in zip(params, grads):
                p.grad = g.clone()
        a.step()
        b.step()
    for x, y in zip(fused, plain):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_weight_decay_is_the_gradient_of_an_l2_penalty():
    # Adam with weight_decay on p equals Adam on a loss with decay / 2 * ||p||^2 added
    torch.manual_seed(2)
    start = torch.randn(4, dtype=torch.float64)
    target = torch.randn(4, dtype=torch.float64)
    for fused in (True, False):
        decayed = start.clone().requires_grad_()
        penalized = start.clone().requires_grad_()
        a = _Adam([decayed], learning_rate=0.05, weight_decay=[0.3])
        b = _Adam([penalized], learning_rate=0.05)
        a._fused = b._fused = fused
        for _ in range(25):
            ((decayed - target) ** 2).sum().backward()
            (((penalized - target) ** 2).sum() + 0.15 * (penalized**2).sum()).backward()
            a.step()
            b.step()
            a.zero_grad()
            b.zero_grad()
        torch.testing.assert_close(decayed, penalized, rtol=1e-12, atol=1e-12)


def test_adam_with_decays_per_parameter_matches_torch_parameter_groups():
    # one fused call per distinct decay, the step count shared by all parameters
    torch.manual_seed(3)
    start = [torch.randn(4, 3, dtype=torch.float64) for _ in range(4)]
    decays = [0.2, 0.0, 0.2, 0.05]
    ours = [p.clone().requires_grad_() for p in start]
    theirs = [p.clone().requires_grad_() for p in start]
    optimizer = _Adam(ours, learning_rate=0.02, weight_decay=decays)
    reference = torch.optim.Adam(
        [{"params": [p], "weight_decay": d} for p, d in zip(theirs, decays)], lr=0.02
    )
    _step_both_and_compare(optimizer, reference, ours, theirs, n_steps=15)
