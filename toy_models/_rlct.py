"""Closed-form learning coefficients (RLCT λ) and multiplicities m from the literature.

Every formula here is exact rational arithmetic on `fractions.Fraction`, so a registry model's
known truth is data that tests can compare with equality, not with a tolerance.
"""

from collections.abc import Sequence
from fractions import Fraction
from math import isqrt
from typing import NamedTuple


class LearningCoefficient(NamedTuple):
    """A real log canonical threshold λ and its multiplicity m.

    The free energy grows as ``F_n = n L_n(w0) + λ log n − (m − 1) log log n + O_p(1)``.
    """

    rlct: Fraction
    multiplicity: int


def regular_rlct(dimension: int) -> LearningCoefficient:
    """λ = d/2, m = 1 for a regular model with d parameters (Watanabe 2009, Sec. 1.4)."""
    return LearningCoefficient(Fraction(dimension, 2), 1)


def normal_crossing_rlct(
    powers: Sequence[int], prior_powers: Sequence[int] | None = None
) -> LearningCoefficient:
    """λ and m for K(w) = Π_j w_j^(2 k_j) with prior φ(w) ∝ Π_j |w_j|^(h_j) near 0.

    λ = min_j (h_j + 1) / (2 k_j),  m = #{j attaining the minimum}
    (Watanabe 2009, Algebraic Geometry and Statistical Learning Theory, Sec. 2.4 and Ch. 6;
    the test set of Lau et al. 2023, arXiv 2308.12108).
    """
    if prior_powers is None:
        prior_powers = (0,) * len(powers)
    ratios = [Fraction(h + 1, 2 * k) for k, h in zip(powers, prior_powers, strict=True)]
    rlct = min(ratios)
    return LearningCoefficient(rlct, ratios.count(rlct))


def reduced_rank_rlct(M: int, H: int, N: int, r: int) -> LearningCoefficient:
    """λ and m of reduced-rank regression y = B A x, A: H×M, B: N×H, true rank r.

    Aoyagi & Watanabe (2005), "Stochastic complexities of reduced rank regression in Bayesian
    estimation", Neural Networks 18(7):924–933, Main Theorem:

    - if N + r <= M + H, M + r <= N + H and H + r <= M + N:
      λ = [2(H+r)(M+N) − (M−N)² − (H+r)²]/8, m = 1, when M + H + N + r is even;
      λ = [2(H+r)(M+N) − (M−N)² − (H+r)² + 1]/8, m = 2, when it is odd;
    - else if M + H < N + r: λ = (HM − Hr + Nr)/2, m = 1;
    - else if N + H < M + r: λ = (HN − Hr + Mr)/2, m = 1;
    - else (M + N < H + r): λ = MN/2, m = 1.
    """
    if N + r <= M + H and M + r <= N + H and H + r <= M + N:
        core = 2 * (H + r) * (M + N) - (M - N) ** 2 - (H + r) ** 2
        if (M + H + N + r) % 2 == 0:
            return LearningCoefficient(Fraction(core, 8), 1)
        return LearningCoefficient(Fraction(core + 1, 8), 2)
    if M + H < N + r:
        return LearningCoefficient(Fraction(H * M - H * r + N * r, 2), 1)
    if N + H < M + r:
        return LearningCoefficient(Fraction(H * N - H * r + M * r, 2), 1)
    return LearningCoefficient(Fraction(M * N, 2), 1)


def deep_linear_rlct(widths: Sequence[int], r: int) -> LearningCoefficient:
    """λ and m of a deep linear network y = W_L ⋯ W_1 x with true product of rank r.

    Aoyagi (2024), "Consideration on the learning efficiency of multiple-layered neural networks
    with linear units", Neural Networks 172:106132, Theorem 1. Widths H_1 (input) … H_{L+1}
    (output), M_j = H_j − r. Among the sorted M_j, S is the set of the ℓ + 1 smallest (the first
    ℓ >= 1 that works) with

        Σ_S M >= ℓ · max_S M  and, when S is not everything,
        max_S M < min_{j∉S} M_j  and  Σ_S M < ℓ · min_{j∉S} M_j.

    With M̄ = ⌈Σ_S M / ℓ⌉ and a = Σ_S M − (M̄ − 1) ℓ:

        λ = [−r² + r (H_1 + H_{L+1})]/2 + a(ℓ − a)/(4ℓ) − (ℓ(ℓ − 1)/4)(Σ_S M / ℓ)²
            + ½ Σ_{i<j ∈ S} M_i M_j,
        m = a(ℓ − a) + 1.

    With one layer (two widths) this is the regular λ = H_1 H_2 / 2; with two it is the
    reduced-rank formula (both are tests).
    """
    sorted_m = sorted(h - r for h in widths)
    for ell in range(1, len(sorted_m)):
        chosen, rest = sorted_m[: ell + 1], sorted_m[ell + 1 :]
        total = sum(chosen)
        if total < ell * max(chosen):
            continue
        if rest and not (max(chosen) < min(rest) and total < ell * min(rest)):
            continue
        break
    else:  # Aoyagi's theorem guarantees a set exists; reaching here is a bug, not bad input.
        raise AssertionError(f"no admissible index set for widths={tuple(widths)}, r={r}")
    mean_ceiling = -(-total // ell)
    a = total - (mean_ceiling - 1) * ell
    pair_sum = Fraction(total * total - sum(m * m for m in chosen), 2)
    rlct = (
        Fraction(-r * r + r * (widths[0] + widths[-1]), 2)
        + Fraction(a * (ell - a), 4 * ell)
        - Fraction(ell * (ell - 1), 4) * Fraction(total, ell) ** 2
        + pair_sum / 2
    )
    return LearningCoefficient(rlct, a * (ell - a) + 1)


def tanh_zero_rlct(num_hidden: int) -> Fraction:
    """λ of y = Σ_{h<=H} a_h tanh(b_h x) + noise when the true function is 0.

    λ = (H + s² + s) / (4 s + 2) with s = ⌊√H⌋, for inputs with a symmetric density
    (Aoyagi & Watanabe 2005; Watanabe 2009, Sec. 7.8; the formula used by the code of
    Lau et al. 2023). H = 1..10 gives 1/2, 2/3, 5/6, 1, 11/10, 6/5, 13/10, 7/5, 3/2, 11/7.
    """
    s = isqrt(num_hidden)
    return Fraction(num_hidden + s * s + s, 4 * s + 2)
