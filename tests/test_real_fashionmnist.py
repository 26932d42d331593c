"""Real FashionMNIST (Debian's dataset-fashion-mnist): the engine reaches the published accuracy."""

import pytest

from ffterm_core.config import RunConfig
from ffterm_core.data.datasets import DEBIAN_FASHION_MNIST_DIR
from ffterm_core.training.session import Session

HAVE_FASHION = (DEBIAN_FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_FASHION, reason="FashionMNIST is not installed (make data)"),
]


def test_ff_layer_one_after_ten_epochs_reaches_the_published_accuracy(tmp_path):
    # the published code reaches about 0.82 test accuracy after 10 epochs of layer 1 alone
    cfg = RunConfig(
        name="fm",
        model="ff",
        dataset="fashionmnist",
        layers=1,
        epochs=10,
        lr=0.01,
        device="cpu",
        eval_every=10,
        final_pvalues=False,
    )
    s = Session(cfg, tmp_path / "fm")
    s.start()
    s.join()
    assert s.state == "finished", s.error
    assert s.final["test_accuracy"] > 0.79
    assert s.final["v_train"] == pytest.approx(2.8215, abs=1e-4)
    layer = s.final["layers"][0]
    assert 0.0 < layer["sparsity"] < 1.0
