"""RunConfig validation and presets: every problem is one line naming the key and the fix."""

import pytest

from ffterm_core.config import ConfigError, RunConfig, from_dict, parse_override
from ffterm_core.store.presets import DEFAULT_PRESET, PresetError, list_presets, load_preset

PAPER = {  # Table 6: (epochs, lr)
    "ff": {"mnist": (1200, 0.01), "fashionmnist": (100, 0.01), "svhn": (1000, 1e-4), "cifar10": (1000, 1e-4)},
    "bpff": {"mnist": (300, 1e-4), "fashionmnist": (300, 1e-4), "svhn": (200, 1e-4), "cifar10": (200, 1e-4)},
    "bp": {"mnist": (80, 1e-4), "fashionmnist": (80, 1e-4), "svhn": (80, 1e-4), "cifar10": (80, 1e-4)},
}


@pytest.mark.parametrize("model", PAPER)
@pytest.mark.parametrize("dataset", ["mnist", "fashionmnist", "svhn", "cifar10"])
def test_paper_presets_follow_table_6(model, dataset):
    cfg = load_preset(f"{model}-{dataset}")
    assert (cfg.model, cfg.dataset) == (model, dataset)
    assert (cfg.epochs, cfg.lr) == PAPER[model][dataset]
    assert cfg.effective_batch_size == (2048 if model == "bp" else 1024)
    assert cfg.threshold == 3.0 and cfg.layers == 3 and cfg.negatives == "fixed"


def test_variant_presets():
    l1 = load_preset("ff-fashionmnist-l1")
    assert l1.goodness == "l1" and l1.effective_normalize == "l1"
    held = load_preset("ff-fashionmnist-heldout")
    assert held.heldout_class is not None
    names = {p.name for p in list_presets()}
    assert {"ff-mnist-l1", "bpff-mnist-l1", "bpff-fashionmnist-l1", DEFAULT_PRESET} <= names
    assert all(p.description for p in list_presets())


def test_overrides_and_derived_values():
    cfg = load_preset("ff-fashionmnist", {"epochs": 5, "heldout_class": 3})
    assert cfg.epochs == 5 and cfg.total_epochs == 15 and cfg.stages == 3
    assert load_preset("ff-fashionmnist", {"schedule": "simultaneous"}).total_epochs == 100
    assert parse_override("epochs=10") == ("epochs", 10)
    assert parse_override("heldout_class=none") == ("heldout_class", "none")
    assert from_dict({"heldout_class": "none"}).heldout_class is None
    assert from_dict({"lr": "1e-4"}).lr == 1e-4


@pytest.mark.parametrize(
    "data, words",
    [
        ({"epoch": 3}, ["unknown key 'epoch'", "epochs"]),
        ({"model": "cnn"}, ["model", "ff, bpff, bp"]),
        ({"dataset": "imagenet"}, ["dataset", "mnist"]),
        ({"epochs": "many"}, ["epochs", "whole number"]),
        ({"epochs": 0}, ["epochs", "out of range"]),
        ({"lr": 0}, ["lr", "> 0"]),
        ({"heldout_class": 10}, ["heldout_class", "<= 9"]),
        ({"heldout_class": -1}, ["heldout_class", ">= 0"]),
        ({"goodness": "l3"}, ["goodness", "l2, l1"]),
        ({"act_l1": 1e-3}, ["act_l1", "bp"]),
        ({"lr": float("nan")}, ["lr", "finite"]),
    ],
)
def test_bad_values_name_the_key(data, words):
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(PresetError) as err:
        load_preset("ff-imagenet")
    assert "ff-fashionmnist" in str(err.value) and "unknown preset" in str(err.value)


def test_malformed_preset_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: ff\n  epochs: [3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_preset(str(bad))
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_preset(str(listy))
    ok = tmp_path / "mine.yaml"
    ok.write_text("model: bp\ndataset: synthetic\nepochs: 2\nlr: 0.001\n")
    cfg = load_preset(str(ok))
    assert cfg.name == "mine" and cfg.model == "bp" and cfg.effective_batch_size == 2048


def test_replace_validates():
    cfg = RunConfig()
    assert cfg.replace(seed=4).seed == 4
    with pytest.raises(ConfigError):
        cfg.replace(layers=0)


def test_presets_are_found_beside_an_engine_installed_elsewhere(tmp_path):
    """An engine installed away from the checkout finds presets through $FFTERM_PRESETS, and says so in one
    line when it cannot find them."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    site = tmp_path / "site"
    shutil.copytree(root / "core" / "ffterm_core", site / "ffterm_core")
    code = (
        "from ffterm_core.store.presets import PresetError, list_presets, presets_dir\n"
        "try:\n    print(presets_dir(), len(list_presets()))\nexcept PresetError as e:\n    print('error', e)"
    )

    def probe(**env: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env={"PYTHONPATH": str(site), **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    found = probe(FFTERM_PRESETS=str(root / "presets")).split()
    assert found == [str(root / "presets"), str(len(list(root.joinpath("presets").glob("*.yaml"))))]
    missing = probe()
    assert missing.startswith("error no presets folder") and "FFTERM_PRESETS" in missing


def test_an_older_config_with_checkpoint_every_still_loads():
    cfg = from_dict({"model": "ff", "checkpoint_every": 1})
    assert cfg.checkpoint_minutes == 5.0  # the epoch count is replaced by the time rule
