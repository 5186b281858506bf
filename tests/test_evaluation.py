import pytest
import torch

from mnist_vae.evaluation import confusion_counts, digit_shares, misreadings


def test_confusion_counts_rows_are_true_digits():
    true = torch.tensor([9, 9, 9, 4, 5])
    read = torch.tensor([4, 9, 4, 4, 8])
    counts = confusion_counts(true, read)
    assert counts.shape == (10, 10) and counts.sum() == 5
    assert counts[9, 4] == 2 and counts[9, 9] == 1 and counts[5, 8] == 1


def test_misreadings_overall_per_digit_and_top_pairs():
    true = torch.tensor([9, 9, 9, 4, 5])
    read = torch.tensor([4, 9, 4, 4, 8])
    summary = misreadings(true, read)
    assert summary["misread_share"] == pytest.approx(3 / 5, abs=1e-4)
    assert summary["misread_share_by_digit"]["9"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["misread_share_by_digit"]["4"] == 0
    assert summary["misread_share_by_digit"]["0"] is None  # no 0 in the data
    assert list(summary["top_confusions"]) == ["9->4", "5->8"]
    assert summary["top_confusions"]["5->8"] == 1.0
    assert summary["report_pairs"]["9->4"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["report_pairs"]["5->8"] == 1.0 and summary["report_pairs"]["4->9"] == 0
    assert summary["report_pairs"]["8->5"] is None  # no 8 in the data


def test_digit_shares_sum_to_one():
    shares = digit_shares(torch.tensor([1, 1, 8, 8, 8, 0]))
    assert shares[8] == pytest.approx(0.5) and sum(shares) == pytest.approx(1)
