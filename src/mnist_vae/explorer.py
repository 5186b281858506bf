"""The latent explorer: one self-contained HTML page that decodes the 2-D latent plane live.

The page carries the decoder's own float32 weights, the test set's posterior means, labels and
images, and a short script (explorer.js) that decodes exactly as `VAE.decode` does: the same
input transform (sigmoid(z) or z), the same layers, the same pixel mean (Bernoulli or
continuous Bernoulli). Nothing is fetched: it works from disk with the network off.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mnist_vae.idx import Dataset
from mnist_vae.latents import posterior_means
from mnist_vae.model import VAE

HERE = Path(__file__).parent
THUMBNAILS_PER_ROW = 100  # the test images travel as one PNG sheet of 28×28 tiles
NEAREST = 8  # test images shown beside the decoded digit


def _base64(array: np.ndarray, dtype: str) -> str:
    """Little-endian bytes of `array` as `dtype`, in base64 (what the page's typed arrays read)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _tile_sheet(images: np.ndarray) -> str:
    """Images (N, 28, 28) uint8 as a lossless greyscale PNG of THUMBNAILS_PER_ROW tiles a row."""
    rows = -(-len(images) // THUMBNAILS_PER_ROW)
    tiles = np.zeros((rows * THUMBNAILS_PER_ROW, 28, 28), np.uint8)
    tiles[: len(images)] = images
    sheet = tiles.reshape(rows, THUMBNAILS_PER_ROW, 28, 28).transpose(0, 2, 1, 3)
    buffer = io.BytesIO()
    Image.fromarray(sheet.reshape(rows * 28, THUMBNAILS_PER_ROW * 28), mode="L").save(
        buffer, format="PNG"
    )
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plane_limits(means: torch.Tensor, sigmoid_latent: bool) -> list[list[float]]:
    """[low, high] of each axis of the plane, in the units the decoder sees.

    With the report's sigmoid the decoder's input is sigmoid(z): the whole unit square.
    Otherwise z itself, over the test set's posterior means and a 5 % margin, rounded out to
    tenths (printable limits, the same for the same model).
    """
    if sigmoid_latent:
        return [[0.0, 1.0], [0.0, 1.0]]
    low, high = means.min(dim=0).values.double(), means.max(dim=0).values.double()
    margin = 0.05 * (high - low)
    return [
        [float(np.floor((lo - m) * 10) / 10), float(np.ceil((hi + m) * 10) / 10)]
        for lo, hi, m in zip(low.tolist(), high.tolist(), margin.tolist(), strict=True)
    ]


def explorer_page(
    vae: VAE,
    images: torch.Tensor,
    labels: torch.Tensor,
    dataset: Dataset,
    steps: int,
) -> str:
    """The page for `vae` over a test set (`images` uint8 (N, 28, 28), `labels` (N,)).

    A latent of other than two dimensions gets a page that says why there is no plane to
    explore, rather than a slice that would hide how the other dimensions move the picture; a
    decoder of more than one hidden layer, one that says the page decodes only the report's.
    """
    if vae.latent_dim != 2:
        return _fill(
            "explorer_unavailable.html",
            DATASET=dataset.name,
            REASON=f"This model's latent has <strong>{vae.latent_dim}</strong> dimensions. The "
            "explorer decodes the points of a 2-D latent plane; a plane cut through a latent of "
            "another size would show the decoder with the other dimensions held fixed, a picture "
            "of the cut rather than of the model, so none is drawn.",
            FIX="Set <code>model.latent_dim: 2</code>",
        )
    if len(vae.hidden_dims) != 1:
        return _fill(
            "explorer_unavailable.html",
            DATASET=dataset.name,
            REASON=f"This model's decoder has <strong>{len(vae.hidden_dims)}</strong> hidden "
            "layers. The page decodes in the browser with the report's decoder, one hidden layer.",
            FIX="Set <code>model.hidden_dims</code> to one layer, e.g. <code>[400]</code>,",
        )
    device = next(vae.parameters()).device
    x = images.reshape(len(images), -1).to(device).float().div(255)
    means = posterior_means(vae, x).cpu()
    # The decoder's hidden layer (hidden, 2) and output layer (784, hidden), under the names of
    # pytorch/examples' VAE, which the page reads.
    layers = {"fc3": vae.decoder[0], "fc4": vae.fc_out}
    data = {
        "dataset": dataset.name,
        "class_names": list(dataset.class_names),
        "hidden_dim": vae.hidden_dims[0],
        "sigmoid_latent": vae.sigmoid_latent,
        "likelihood": vae.likelihood,
        "steps": steps,
        "nearest": NEAREST,
        "limits": plane_limits(means, vae.sigmoid_latent),
        "count": len(labels),
        "thumbnails_per_row": THUMBNAILS_PER_ROW,
        **{
            f"{name}_{part}": _base64(getattr(layer, part).detach().cpu().numpy(), "<f4")
            for name, layer in layers.items()
            for part in ("weight", "bias")
        },
        "means": _base64(means.numpy(), "<f4"),  # (N, 2), z
        "labels": _base64(labels.numpy(), "u1"),
    }
    # "<" never occurs in the JSON's base64 and numbers; escaped anyway so no class name can
    # close the script element early.
    payload = json.dumps(data, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")
    return _fill(
        "explorer.html",
        DATASET=dataset.name,
        DATA=payload,
        SCRIPT=(HERE / "explorer.js").read_text(encoding="utf-8"),
        THUMBNAILS=_tile_sheet(images.numpy()),
    )


def _fill(template: str, **fields: str) -> str:
    page = (HERE / template).read_text(encoding="utf-8")
    for name, value in fields.items():
        page = page.replace(f"@{name}@", value)
    return page
