import subprocess
import sys

import pytest
import torch

from mnist_vae import training
from mnist_vae.checkpoints import ModelFileError, load_model, save_model
from mnist_vae.loops import FusedAdam
from mnist_vae.mnist import load_split
from mnist_vae.model import VAE, loss_terms
from mnist_vae.runtime import DeviceError, resolve_device
from mnist_vae.training import evaluate_elbo, fit, kl_weight, train_epoch

NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
NEEDS_MPS = pytest.mark.skipif(
    not torch.backends.mps.is_available(), reason="needs Apple's GPU (MPS)"
)


def _fit(root, seed=0, epochs=3, lr=1e-2, hidden_dim=32):
    torch.manual_seed(seed)
    model = VAE(hidden_dims=[hidden_dim])
    train_x = load_split(root, "train").flat_float()
    test_x = load_split(root, "test").flat_float()
    rows = fit(model, train_x, test_x, epochs=epochs, batch_size=64, lr=lr, seed=seed).rows
    return model, rows


def test_loss_falls_on_learnable_data(synthetic_root):
    _, rows = _fit(synthetic_root)
    assert len(rows) == 3
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert rows[-1]["test_loss"] < rows[0]["test_loss"]
    assert all(r["train_loss"] == pytest.approx(r["train_recon"] + r["train_kl"]) for r in rows)


def test_another_seed_gives_other_numbers(synthetic_root):
    # Same seed, same bytes is checked through DVC (test_pipeline.py).
    keys = ["train_loss", "test_loss", "test_kl"]
    first = [[r[k] for k in keys] for r in _fit(synthetic_root, seed=3)[1]]
    other = [[r[k] for k in keys] for r in _fit(synthetic_root, seed=4)[1]]
    assert first != other


def test_model_file_round_trip_with_weights_only(tmp_path):
    model = VAE(hidden_dims=[8], latent_dim=3, sigmoid_latent=False)
    save_model(model, tmp_path / "vae.pt")
    loaded = load_model(
        tmp_path / "vae.pt", VAE, {"hidden_dims": [8], "latent_dim": 3, "sigmoid_latent": False}
    )
    assert loaded.hyperparameters() == model.hyperparameters()
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


def test_a_model_file_trained_with_other_params_is_refused_naming_each_difference(tmp_path):
    path = tmp_path / "vae.pt"
    save_model(VAE(hidden_dims=[8], latent_dim=3, sigmoid_latent=False), path)
    params = {"hidden_dims": [16], "latent_dim": 3, "sigmoid_latent": True}
    with pytest.raises(ModelFileError) as raised:
        load_model(path, VAE, params)
    assert str(raised.value) == (
        f"{path} was trained with other params (hidden_dims: file has [8], params.yaml has [16]; "
        "sigmoid_latent: file has False, params.yaml has True); rerun `dvc repro` to retrain it"
    )


def test_a_pickle_with_code_is_not_loaded(tmp_path):
    import os

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"hyperparameters": {}, "state_dict": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(
        ModelFileError,
        match=r"evil.pt: refused, not a plain weights file \(Weights only load failed",
    ):
        load_model(tmp_path / "evil.pt", VAE)


def test_a_missing_model_file_is_one_line_saying_to_run_dvc_repro(tmp_path):
    path = tmp_path / "models" / "vae.pt"
    with pytest.raises(ModelFileError) as raised:
        load_model(path, VAE)
    assert str(raised.value) == f"{path}: no such model file; run `dvc repro` first"


@pytest.mark.parametrize(
    "content",
    [torch.zeros(3), {"state_dict": {}}, {"hyperparameters": {"hidden_dim": 8}}],
    ids=["a tensor", "no hyperparameters", "no state dict"],
)
def test_a_file_that_torch_loads_but_the_pipeline_did_not_write_is_refused(tmp_path, content):
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(ModelFileError) as raised:
        load_model(path, VAE)
    assert str(raised.value) == f"{path}: not a model file written by this pipeline"


def test_another_models_file_is_refused_naming_the_class(tmp_path):
    from mnist_vae.classifier import Classifier

    save_model(Classifier(16), tmp_path / "classifier.pt")
    with pytest.raises(ModelFileError, match=r"classifier.pt: does not hold a VAE: "):
        load_model(tmp_path / "classifier.pt", VAE)


def test_evaluation_reports_per_image_terms(synthetic_root):
    torch.manual_seed(0)
    terms = evaluate_elbo(
        VAE(hidden_dims=[8]), load_split(synthetic_root, "test").flat_float(), batch_size=50
    )
    assert terms.loss == pytest.approx(terms.recon + terms.kl)
    assert 300 < terms.recon < 784 * 2  # an untrained decoder: about ln 2 per pixel


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_device_auto_prefers_cuda_then_apples_gpu_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="needs a machine without MPS")
def test_asking_for_mps_without_it_is_a_one_line_error():
    with pytest.raises(DeviceError, match="'mps' requested but this machine has no usable Apple"):
        resolve_device("mps")


@NEEDS_MPS
@pytest.mark.parametrize("binarize", ["none", "dynamic"])
def test_training_on_apples_gpu_runs_and_agrees_with_the_cpu(synthetic_root, binarize):
    results = {}
    for device in ("cpu", "mps"):
        torch.manual_seed(0)
        model = VAE(hidden_dims=[32]).to(device)
        train_x = load_split(synthetic_root, "train").flat_float(device)
        rows = fit(model, train_x, train_x[:64], epochs=2, batch_size=64, lr=1e-2, seed=0,
                   binarize=binarize).rows  # fmt: skip
        results[device] = rows[-1]["train_loss"]
    assert results["mps"] == pytest.approx(results["cpu"], rel=0.05)


DEVICES = ["cpu", pytest.param("cuda", marks=NEEDS_CUDA), pytest.param("mps", marks=NEEDS_MPS)]


@pytest.mark.parametrize("device", DEVICES)
def test_fused_adam_takes_torch_optim_adams_fused_steps_bit_for_bit(synthetic_root, device):
    x = load_split(synthetic_root, "train").flat_float(device)[:64]
    models, optimizers = [], []
    for make in (
        lambda ps: torch.optim.Adam(ps, lr=1e-2, fused=True),
        lambda ps: FusedAdam(ps, 1e-2),
    ):
        torch.manual_seed(0)
        models.append(VAE(hidden_dims=[32]).to(device))
        optimizers.append(make(models[-1].parameters()))
    for step in range(6):
        for model, optimizer in zip(models, optimizers, strict=True):
            torch.manual_seed(step)  # the same reparameterisation noise for both
            logits, mu, logvar = model(x)
            recon, kl = loss_terms(logits, x, mu, logvar)
            optimizer.zero_grad()
            (recon + kl).mean().backward()
            if step in (2, 3):  # as in torch.optim.Adam: no gradient, no update, no step counted
                model.fc_out.bias.grad = None
            optimizer.step()
        reference, ours = (dict(model.named_parameters()) for model in models)
        for name, parameter in reference.items():
            assert torch.equal(ours[name], parameter), (step, name)
    assert not torch.equal(models[1].fc_out.weight, VAE(hidden_dims=[32]).to(device).fc_out.weight)


def test_training_leaves_torch_dynamo_unimported(synthetic_root):
    # torch.optim's optimizers import it (a second of start-up in each training stage).
    code = (
        "import sys\n"
        "from mnist_vae.classifier import Classifier, fit_classifier\n"
        "from mnist_vae.mnist import load_split\n"
        "from mnist_vae.model import VAE\n"
        "from mnist_vae.training import fit\n"
        f"split = load_split({str(synthetic_root)!r}, 'train')\n"
        "x = split.flat_float()\n"
        "fit(VAE(hidden_dims=[8]), x, x, epochs=1, batch_size=256, lr=1e-3, seed=0)\n"
        "fit_classifier(Classifier(8), x, split.labels, epochs=1, batch_size=256, lr=1e-3, seed=0)\n"
        "print('torch._dynamo' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_the_kl_weight_rises_linearly_over_the_warm_up_then_stays_at_one():
    assert [kl_weight(epoch, 4) for epoch in range(1, 8)] == [0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert [kl_weight(epoch, 0) for epoch in (1, 2, 50)] == [1, 1, 1]


class _RecordingOptimizer:
    """Stands in for FusedAdam: keeps each step's gradients and changes nothing."""

    def __init__(self, model):
        self.model, self.gradients = model, []

    def zero_grad(self):
        self.model.zero_grad(set_to_none=True)

    def step(self):
        self.gradients.append([p.grad.clone() for p in self.model.parameters()])


def test_an_epochs_gradient_is_the_reconstructions_plus_the_weighted_kls(synthetic_root):
    """One batch, the same noise: the gradient at KL weight w is the reconstruction term's
    plus w times the KL term's, both computed here from the model's own loss terms."""
    x = load_split(synthetic_root, "train").flat_float()[:64]
    model = VAE(hidden_dims=[16], latent_dim=2)

    def trained_gradient(weight):
        optimizer = _RecordingOptimizer(model)
        torch.manual_seed(5)
        train_epoch(model, optimizer, x, len(x), torch.Generator().manual_seed(0), None, weight)
        return optimizer.gradients[0]

    def term_gradients():
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        torch.manual_seed(5)
        logits, mu, logvar = model(x[order])
        recon, kl = loss_terms(logits, x[order], mu, logvar)
        parameters = list(model.parameters())
        return (torch.autograd.grad(recon.mean(), parameters, retain_graph=True),
                torch.autograd.grad(kl.mean(), parameters, allow_unused=True))  # fmt: skip

    recon_gradient, kl_gradient = term_gradients()
    for weight in (0.0, 0.3, 1.0):
        for got, recon, kl in zip(
            trained_gradient(weight), recon_gradient, kl_gradient, strict=True
        ):
            kl = torch.zeros_like(recon) if kl is None else kl  # the decoder does not see the KL
            assert torch.allclose(got, recon + weight * kl, rtol=1e-4, atol=1e-6), weight


def test_early_stopping_stops_after_patience_and_keeps_the_best_epochs_model(
    synthetic_root, monkeypatch
):
    """Real training, with the validation losses scripted: lowest after epoch 4 (epoch 1's
    lower one falls inside the KL warm-up and does not count), so with patience 3 training
    stops after epoch 7 and the model is the one after epoch 4."""
    scripted = iter([1.0, 9.0, 8.0, 7.0, 7.5, 7.2, 7.1, 5.0])
    x = load_split(synthetic_root, "train").flat_float()
    validation = x[-64:].clone()
    real = training.evaluate_elbo

    def evaluate(model, data, *args):
        if data is validation:
            return training.ElboTerms(recon=next(scripted), kl=0.0)
        return real(model, data, *args)

    monkeypatch.setattr(training, "evaluate_elbo", evaluate)
    snapshots = {}
    torch.manual_seed(0)
    model = VAE(hidden_dims=[16])

    def remember(row):
        snapshots[row["epoch"]] = {k: v.clone() for k, v in model.state_dict().items()}

    result = fit(model, x[:-64], x[:64], epochs=20, batch_size=64, lr=1e-2, seed=0,
                 validation_x=validation, kl_warmup_epochs=1, patience=3, on_epoch=remember)  # fmt: skip
    assert [row["epoch"] for row in result.rows] == [1, 2, 3, 4, 5, 6, 7]
    assert result.kept_epoch == 4
    assert [row["validation_loss"] for row in result.rows] == [1, 9, 8, 7, 7.5, 7.2, 7.1]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[4][name]), name
    assert not torch.equal(snapshots[4]["fc_out.weight"], snapshots[7]["fc_out.weight"])
