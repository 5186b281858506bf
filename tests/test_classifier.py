import pytest
import torch

from mnist_vae.checkpoints import ModelFileError, load_model, save_model
from mnist_vae.classifier import Classifier, classify, fit_classifier
from mnist_vae.idx import DataError
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE


def test_the_classifier_learns_the_synthetic_digits(synthetic_root):
    torch.manual_seed(0)
    train, test = load_split(synthetic_root, "train"), load_split(synthetic_root, "test")
    model = Classifier(hidden_dim=32)
    fit_classifier(
        model, train.flat_float(), train.labels, epochs=3, batch_size=32, lr=1e-2, seed=0
    )
    digit, confidence = classify(model, test.flat_float())
    assert (digit == test.labels).double().mean() > 0.9
    # The confidence is the probability of the predicted digit, not some other score.
    with torch.no_grad():
        probabilities = torch.softmax(model.eval()(test.flat_float()), dim=1)
    assert torch.allclose(confidence, probabilities.gather(1, digit.unsqueeze(1)).squeeze(1))


def test_an_empty_training_set_is_a_clear_error():
    with pytest.raises(DataError, match="empty training set"):
        fit_classifier(
            Classifier(8),
            torch.zeros(0, 784),
            torch.zeros(0, dtype=torch.long),
            epochs=1,
            batch_size=4,
            lr=1e-3,
            seed=0,
        )


def test_a_vae_file_is_not_taken_for_a_classifier(tmp_path):
    save_model(VAE(hidden_dims=[8]), tmp_path / "vae.pt")
    with pytest.raises(ModelFileError, match="does not hold a Classifier"):
        load_model(tmp_path / "vae.pt", Classifier)
