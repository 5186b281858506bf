import math

import numpy as np
import pytest
import torch

from mnist_vae.confusions import (
    class_shares,
    confusion_counts,
    misread_share,
    misread_share_by_class,
    read_as_shares,
    top_confusions,
)

TRUE = torch.tensor([9, 9, 9, 4, 5, 4, 4, 4, 4, 4, 4, 4, 4, 4])
READ = torch.tensor([4, 9, 4, 4, 8, 9, 9, 9, 4, 4, 4, 4, 4, 4])


def test_confusion_counts_rows_are_true_classes():
    counts = confusion_counts(TRUE, READ)
    assert counts.shape == (10, 10) and counts.sum() == len(TRUE)
    assert counts[9, 4] == 2 and counts[9, 9] == 1 and counts[5, 8] == 1 and counts[4, 9] == 3


def test_shares_are_per_true_class_and_nan_where_a_class_is_absent():
    shares = read_as_shares(confusion_counts(TRUE, READ))
    assert shares[9, 4] == pytest.approx(2 / 3) and shares[4, 9] == pytest.approx(3 / 10)
    assert math.isnan(shares[0, 0])
    assert misread_share(confusion_counts(TRUE, READ)) == pytest.approx(6 / 14)
    by_class = misread_share_by_class(confusion_counts(TRUE, READ))
    assert by_class[9] == pytest.approx(2 / 3) and by_class[5] == 1 and math.isnan(by_class[0])


def test_top_confusions_rank_by_share_not_by_count():
    # 4→9 happens three times but to 30 % of the 4s; 5→8 once, to every 5; 9→4 twice, 2/3.
    top = top_confusions(confusion_counts(TRUE, READ))
    assert [(t, r) for t, r, _ in top] == [(5, 8), (9, 4), (4, 9)]
    assert top[0][2] == 1.0


def test_class_shares_sum_to_one():
    shares = class_shares(torch.tensor([1, 1, 8, 8, 8, 0]))
    assert shares[8] == pytest.approx(0.5) and np.sum(shares) == pytest.approx(1)
