import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Tests never download: point the data dir at an empty folder (system dirs are still searched)."""
    monkeypatch.setenv("FFTERM_DATA", str(tmp_path_factory.mktemp("data")))
    monkeypatch.setattr("ffterm_core.data.datasets._download", _no_download)


def _no_download(*args, **kwargs):
    raise OSError("downloads are disabled in the tests")
