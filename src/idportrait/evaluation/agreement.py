"""Inter-rater agreement: Krippendorff's alpha for ordinal ratings, with missing values.

Following Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": only units rated by two or more
raters are pairable; the coincidence matrix counts, within each unit, every ordered pair of values from two
different raters, weighted 1 / (m_u - 1); the ordinal distance between values c <= k is
``(n_c + ... + n_k - (n_c + n_k) / 2) ** 2`` over the value totals n_g; and

    alpha = 1 - (n - 1) * sum(o_ck * d_ck) / sum(n_c * n_k * d_ck)
"""

from __future__ import annotations

import numpy as np


def krippendorff_alpha_ordinal(ratings: np.ndarray) -> float:
    """Alpha of a [raters, units] array of ordinal values, NaN = not rated.

    NaN when no unit has two ratings or every pairable rating has the same value (no expected disagreement).
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    values = np.unique(ratings[~np.isnan(ratings)])
    counts = (ratings[:, :, None] == values).sum(axis=0).astype(np.float64)  # [units, values]
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if len(counts) == 0:
        return float("nan")
    weighted = counts / (m - 1)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))  # o_ck
    totals = coincidence.sum(axis=1)  # n_c
    n = totals.sum()
    index = np.arange(len(values))
    low, high = np.minimum.outer(index, index), np.maximum.outer(index, index)
    between = np.cumsum(totals)[high] - np.cumsum(totals)[low] + totals[low]  # n_c + ... + n_k
    distance = (between - (totals[low] + totals[high]) / 2) ** 2
    expected = (np.outer(totals, totals) * distance).sum()
    if expected == 0:
        return float("nan")
    return float(1.0 - (n - 1) * (coincidence * distance).sum() / expected)
