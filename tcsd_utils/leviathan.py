"""Leviathan et al.'s equations: what an acceptance rate alpha is worth (arXiv 2211.17192).

The one home of the theory that turns alpha into a speedup:

- `expected_tokens_per_step`: Eq. 1, tokens per target forward, ``(1 - a^(k+1)) / (1 - a)``,
  on a number or an array of alphas (replicates);
- `predicted_gamma`: Theorem 3.8, the expected wall-time improvement;
- `best_k`: Sec. 3.4, the draft length that maximises it (or the bound with a measured
  verification cost).
"""

from __future__ import annotations

import numpy as np

__all__ = ["expected_tokens_per_step", "predicted_gamma", "best_k"]


def expected_tokens_per_step(alpha, k: int):
    """Tokens per target forward, ``(1 - alpha^(k+1)) / (1 - alpha)`` (Leviathan Eq. 1),
    ``k + 1`` at alpha 1. ``alpha`` is a number (returns a float) or an array of them, such
    as replicates (returns an array; alphas are clipped to [0, 1])."""
    if np.ndim(alpha) == 0:
        a = float(alpha)
        return float(k + 1) if a >= 1.0 else (1 - a ** (k + 1)) / (1 - a)
    a = np.clip(np.asarray(alpha, float), 0.0, 1.0)
    safe = np.where(a < 1, a, 0.5)
    return np.where(a < 1, (1 - safe ** (k + 1)) / (1 - safe), k + 1.0)


def predicted_gamma(alpha: float, c: float, k: int, verify: float = 1.0) -> float:
    """Leviathan et al.'s expected wall-time improvement, ``(1 - a^(k+1)) / ((1 - a)(k c + 1))``.

    ``verify`` (default 1, Leviathan's assumption) is the cost of the target's forward over
    k + 1 tokens in units of a one-token forward; with the measured `evaluate.verify_cost`
    the formula is the bound this machine allows: ``(1 - a^(k+1)) / ((1 - a)(k c + verify))``."""
    return expected_tokens_per_step(alpha, k) / (k * c + verify)


def best_k(alpha: float, c: float, k_max: int = 8, verify=None) -> int:
    """The draft length that maximises `predicted_gamma` for a measured alpha and c.

    Leviathan et al. 2023, Sec. 3.4: the optimal k grows with alpha and shrinks with c. At
    the alphas of the embedded pair (about 0.1-0.3, c about 0.07) it is 1.

    ``verify``, a function of k, gives the measured cost of a verification step (k + 1
    tokens, in one-token forwards: `evaluate.verify_cost`); k then maximises the bound this
    machine allows. A verification is taken to cost at least one forward, so a k whose
    prediction at cost 1 cannot beat the best so far is never measured.
    """
    if not 0 <= alpha <= 1 or c < 0:
        raise ValueError(f"alpha must lie in [0, 1] and c be >= 0, got alpha={alpha}, c={c}")
    if verify is None:
        return max(range(1, k_max + 1), key=lambda k: predicted_gamma(alpha, c, k))
    best, best_gamma = 1, predicted_gamma(alpha, c, 1, max(1.0, verify(1)))
    for k in range(2, k_max + 1):
        if predicted_gamma(alpha, c, k) <= best_gamma:
            continue
        gamma = predicted_gamma(alpha, c, k, max(1.0, verify(k)))
        if gamma > best_gamma:
            best, best_gamma = k, gamma
    return best
