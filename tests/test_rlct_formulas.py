"""Each λ formula against published values and against the cases it reduces to."""

from fractions import Fraction

import pytest

from toy_models import (
    deep_linear_rlct,
    normal_crossing_rlct,
    reduced_rank_rlct,
    regular_rlct,
    tanh_zero_rlct,
)


@pytest.mark.parametrize(
    "M, H, N, expected",
    [(5, 3, 5, Fraction(13, 2)), (5, 4, 5, Fraction(8)), (4, 3, 8, Fraction(6)), (8, 3, 4, Fraction(6)), (3, 8, 4, Fraction(6))],
)
def test_reduced_rank_published_values(M, H, N, expected):
    assert reduced_rank_rlct(M, H, N, 0).rlct == expected


@pytest.mark.parametrize("M, N", [(3, 3), (4, 6), (6, 4), (5, 5), (2, 7)])
def test_reduced_rank_at_full_rank_is_regular_minus_rank_symmetry(M, N):
    # Rank-H matrices N×M form a manifold of dimension H(M + N − H): λ = H(M + N − H)/2, m = 1.
    for H in range(1, min(M, N) + 1):
        assert reduced_rank_rlct(M, H, N, H) == (Fraction(H * (M + N - H), 2), 1)


def test_reduced_rank_parity_gives_multiplicity_two():
    assert reduced_rank_rlct(3, 2, 4, 0) == (Fraction(3), 2)
    assert reduced_rank_rlct(3, 2, 3, 0).multiplicity == 1


@pytest.mark.parametrize(
    "widths, r, expected_rlct, expected_m",
    [
        ((2, 2, 2), 0, Fraction(3, 2), 1),
        ((2, 2, 2), 1, Fraction(2), 2),
        ((3, 3, 3, 3), 0, Fraction(3), 1),
        ((3, 3, 3, 3), 1, Fraction(4), 3),
        ((1, 1, 1, 1), 0, Fraction(1, 2), 3),
        ((10, 5, 10), 5, Fraction(75, 2), 1),
    ],
)
def test_deep_linear_published_values(widths, r, expected_rlct, expected_m):
    assert deep_linear_rlct(widths, r) == (expected_rlct, expected_m)


def test_deep_linear_with_two_layers_equals_reduced_rank_everywhere_up_to_eight():
    checked = 0
    for M in range(1, 9):
        for H in range(1, 9):
            for N in range(1, 9):
                for r in range(0, min(M, H, N) + 1):
                    assert deep_linear_rlct((M, H, N), r) == reduced_rank_rlct(M, H, N, r), (M, H, N, r)
                    checked += 1
    assert checked > 1000


@pytest.mark.parametrize("widths", [(1, 1), (3, 5), (7, 2), (10, 10)])
def test_one_layer_deep_linear_is_regular(widths):
    for r in range(min(widths) + 1):
        assert deep_linear_rlct(widths, r) == regular_rlct(widths[0] * widths[1])


def test_deep_linear_abc_is_the_triple_normal_crossing():
    # (1,1,1,1), r = 0: y = a b c x, K ∝ (abc)², the normal crossing with powers (1,1,1).
    assert deep_linear_rlct((1, 1, 1, 1), 0) == normal_crossing_rlct((1, 1, 1))


@pytest.mark.parametrize(
    "powers, prior_powers, expected_rlct, expected_m",
    [
        ((1, 2), (0, 0), Fraction(1, 4), 1),
        ((1, 3), (0, 0), Fraction(1, 6), 1),
        ((1, 3), (1, 0), Fraction(1, 6), 1),
        ((3, 1), (1, 1), Fraction(1, 3), 1),
        ((1, 1), (0, 0), Fraction(1, 2), 2),
        ((2, 1), (2, 2), Fraction(3, 4), 1),
        ((1, 1), (1, 1), Fraction(1), 2),
        ((4, 1), (6, 3), Fraction(7, 8), 1),
        ((3, 1), (3, 2), Fraction(2, 3), 1),
        ((1, 2), None, Fraction(1, 4), 1),
        ((2,), None, Fraction(1, 4), 1),
    ],
)
def test_normal_crossing_llc_paper_test_set(powers, prior_powers, expected_rlct, expected_m):
    assert normal_crossing_rlct(powers, prior_powers) == (expected_rlct, expected_m)


def test_normal_crossing_with_first_powers_is_regular():
    for d in range(1, 6):
        assert normal_crossing_rlct((1,) * 1) == regular_rlct(1)
        assert normal_crossing_rlct((1,) * d).rlct == Fraction(1, 2)
        assert normal_crossing_rlct((1,) * d).multiplicity == d


def test_tanh_zero_values_for_one_to_ten_hidden_units():
    expected = [Fraction(1, 2), Fraction(2, 3), Fraction(5, 6), Fraction(1), Fraction(11, 10),
                Fraction(6, 5), Fraction(13, 10), Fraction(7, 5), Fraction(3, 2), Fraction(11, 7)]
    assert [tanh_zero_rlct(H) for H in range(1, 11)] == expected


def test_tanh_single_unit_matches_its_normal_crossing():
    # a tanh(b x) ≈ a b x near 0: K ≈ c (ab)², the normal crossing (1, 1).
    assert tanh_zero_rlct(1) == normal_crossing_rlct((1, 1)).rlct
