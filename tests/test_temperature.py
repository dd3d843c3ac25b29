import math

import pytest
import torch

from tcsd_utils import temperature as T


@pytest.mark.parametrize("tau", [-0.1, float("nan"), float("inf"), -float("inf"), "1", None, True])
def test_bad_tau_raises(tau):
    with pytest.raises(ValueError, match="tau"):
        T.probs(torch.zeros(3), tau)


def test_tau_zero_is_one_hot_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0], [5.0, 5.0, 1.0]])
    p = T.probs(logits, 0)
    assert torch.equal(p, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))  # ties -> lowest id


@pytest.mark.parametrize("tau", [0.25, 1.0, 2.0, 5.0])
def test_positive_tau_is_softmax_in_float32(tau):
    logits = torch.randn(4, 11, dtype=torch.bfloat16)
    p = T.probs(logits, tau)
    assert p.dtype == torch.float32
    torch.testing.assert_close(p, torch.softmax(logits.float() / tau, -1))
    torch.testing.assert_close(T.log_probs(logits, tau).exp(), p)


def test_higher_tau_flattens():
    logits = torch.randn(50)
    ents = [T.entropy(T.probs(logits, tau)).item() for tau in (0.0, 0.3, 1.0, 2.0)]
    assert ents[0] == 0.0
    assert ents == sorted(ents) and ents[-1] < math.log(50) + 1e-5


def test_divergences():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.25, 0.25, 0.5])
    assert T.tvd(p, q).item() == pytest.approx(0.5)
    assert T.overlap(p, q).item() == pytest.approx(1 - T.tvd(p, q).item())
    assert T.kl(p, q).item() == pytest.approx(math.log(2))
    assert math.isinf(T.kl(q, p).item())
    assert T.kl(p, p).item() == pytest.approx(0.0)
    assert T.top_k_mass(q, 1).item() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        T.top_k_mass(q, 0)


def test_sample_is_seeded_and_follows_p():
    p = torch.tensor([0.1, 0.0, 0.9])
    draws = T.sample(p.expand(4000, 3), torch.Generator().manual_seed(0))
    again = T.sample(p.expand(4000, 3), torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    assert (draws == 1).sum() == 0
    assert abs((draws == 2).float().mean().item() - 0.9) < 0.02


def test_sample_matches_the_distribution_and_skips_zero_mass():
    from scipy import stats as sps

    g = torch.Generator().manual_seed(3)
    p = torch.softmax(torch.randn(40, generator=g) * 2, -1)
    p[[0, 7, 39]] = 0.0  # first, middle and last tokens have no mass
    p = p / p.sum()
    draws = T.sample(p.expand(50_000, 40).contiguous(), torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=40)
    assert counts[[0, 7, 39]].sum() == 0
    keep = p > 0
    assert sps.chisquare(counts[keep].double().numpy(), (p[keep] * 50_000).double().numpy()).pvalue > 1e-3
    assert T.sample(torch.tensor([0.0, 0.0, 1.0]), torch.Generator().manual_seed(1)).item() == 2
