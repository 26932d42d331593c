"""`ffterm bench --quick --json`: every figure present, of the right type and sane (no timed assertions)."""

import json
import math
import subprocess
import sys

import pytest
import torch

from ffterm_core.bench.benchmark import epoch_flops
from ffterm_core.config import RunConfig

TRAINERS = ("ff", "ff_simultaneous", "bpff", "bp")


def positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_epoch_flops_follow_the_stated_formulas():
    m, d, h = 100, 784, 1000
    ff = RunConfig(model="ff")
    assert epoch_flops(ff, m, d, h, layer=0) == 4 * 200 * d * h
    assert epoch_flops(ff, m, d, h, layer=2) == 4 * 200 * h * h
    assert epoch_flops(ff.replace(schedule="simultaneous"), m, d, h) == 4 * 200 * (d * h + 2 * h * h)
    # BP/FF adds the input gradients of layers 2 and 3
    assert epoch_flops(RunConfig(model="bpff"), m, d, h) == 4 * 200 * (d * h + 2 * h * h) + 2 * 200 * 2 * h * h
    # BP: plain images only (m rows), the 10-way head is a fourth layer
    bp = 4 * m * (d * h + 2 * h * h + h * 10) + 2 * m * (2 * h * h + h * 10)
    assert epoch_flops(RunConfig(model="bp"), m, d, h) == bp


def test_bench_repeats_three_times_by_default():
    from ffterm.cli import build_parser

    assert build_parser().parse_args(["bench"]).repeats == 3


def test_quick_bench_reports_every_figure(tmp_path):
    """One `--quick --json` run in a fresh process (as a user runs it), without textual."""
    out = tmp_path / "bench.json"
    code = (
        "import sys; sys.modules['textual'] = None; from ffterm.cli import main; "
        f"sys.exit(main(['bench', '--quick', '--repeats', '1', '--dataset', 'synthetic', '--device', 'cpu', '--json', {str(out)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "10-label evaluation" in proc.stdout
    r = json.loads(out.read_text())
    assert r["device"].startswith("cpu") and r["quick"] is True
    assert "smoke figure" in r["label"] and "smoke figure" in proc.stdout  # --quick says what it is
    assert r["repeats"] == 1 and r["matmul_precision"] == "ieee"
    assert positive(r["peak_matmul_flops"]) and r["peak_matmul_flops"] == max(r["peak_matmul_flops_measured"])
    for name in TRAINERS:
        t = r["trainers"][name]
        for key in ("samples_per_s", "seconds_per_epoch", "speedup_vs_typical"):
            assert positive(t[key]), (name, key)
        assert 0 < t["efficiency"] <= 1.5, name
        assert 0 < t["efficiency_at_shapes"] <= 1.5 and positive(t["shapes_peak_flops"]), name
        # samples/s and seconds agree: an FF epoch is positives + negatives, BP plain images
        samples = r["train_samples"] * (1 if name == "bp" else 2)
        assert t["samples_per_s"] == pytest.approx(samples / t["seconds_per_epoch"])
    assert len(r["trainers"]["ff"]["layer_epoch_s"]) == 3
    assert positive(r["eval"]["seconds"]) and positive(r["eval"]["speedup_vs_10pass"])
    assert r["eval"]["speedup_vs_10pass"] == pytest.approx(r["eval"]["ten_pass_seconds"] / r["eval"]["seconds"])
    assert positive(r["analysis"]["live_seconds"]) and positive(r["analysis"]["final_seconds"])
    assert r["app_throughput_ratio"] is None  # only with --ui
    assert positive(r["peak_memory_bytes"]["host"]) and r["peak_memory_bytes"]["device"] is None
    b = r["batched"]
    assert b["seeds"] == 3 and positive(b["seeds_per_hour_ratio"]) and 0 < b["efficiency"] <= 1.5
    assert b["sequential_seconds"] == pytest.approx(3 * b["one_seed_seconds_per_epoch"])
    assert b["seeds_per_hour_ratio"] == pytest.approx(b["sequential_seconds"] / b["seconds_per_epoch"])
    assert "skipped" in r["precision"]["tf32"]  # no TF32 on a CPU: one line saying why
    assert positive(r["options"]["pos_neg_one_matmul"]["speedup"])
    assert "skipped" in r["options"]["compile"]  # only with --compile: compiling takes minutes


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bench_measures_the_device(tmp_path):
    from ffterm_core.bench.benchmark import run_bench

    r = run_bench(device="cuda", dataset="synthetic", quick=True, repeats=1, log=lambda _: None)
    assert r["device"].startswith("cuda") and positive(r["peak_memory_bytes"]["device"])
    assert all(0 < r["trainers"][name]["efficiency"] <= 1.5 for name in TRAINERS)


@pytest.mark.parametrize(
    "flags, native", [({"avx2", "fma"}, False), ({"avx2", "avx512_bf16"}, True), ({"amx_bf16"}, True), (set(), False)]
)
def test_bf16_only_where_the_cpu_multiplies_it_natively(tmp_path, monkeypatch, flags, native):
    from ffterm_core import device
    from ffterm_core.training.session import Session

    monkeypatch.setattr(device, "_cpu_flags", lambda: frozenset(flags))
    cpu = torch.device("cpu")
    assert device.native_bf16(cpu) is native
    cfg = RunConfig(dataset="synthetic", device="cpu", precision="bf16")
    if native:
        device.check_precision("bf16", cpu)
        return
    with pytest.raises(device.DeviceError, match=r"no native bfloat16 arithmetic.*use precision fp32"):
        Session(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_tf32_is_refused_on_a_cpu(tmp_path):
    from ffterm_core.device import DeviceError
    from ffterm_core.training.session import Session

    with pytest.raises(DeviceError, match=r"precision tf32: .* no TF32 matmuls"):
        Session(RunConfig(dataset="synthetic", device="cpu", precision="tf32"), tmp_path / "run")


@pytest.fixture
def cpu_matmuls_set_to_tf32():
    """float32 CPU matmuls set to TF32 through torch's current API, as an environment override would."""
    before = torch.backends.mkldnn.matmul.fp32_precision
    torch.backends.mkldnn.matmul.fp32_precision = "tf32"
    yield
    torch.backends.mkldnn.matmul.fp32_precision = before


def test_fp32_runs_record_ieee_and_refuse_a_silent_tf32(tmp_path, cpu_matmuls_set_to_tf32):
    from ffterm_core import device

    cpu = torch.device("cpu")
    assert device.fp32_matmul_precision(cpu) == "tf32"
    with pytest.raises(device.DeviceError, match=r"precision fp32: float32 matmuls .* run in tf32.*unset that"):
        device.check_precision("fp32", cpu)
    torch.backends.mkldnn.matmul.fp32_precision = "none"  # the default: IEEE float32
    assert device.effective_precision("fp32", cpu) == "ieee"
    assert device.effective_precision("bf16", cpu) == "bf16"
    device.check_precision("fp32", cpu)


def test_final_json_records_the_matmul_precision_and_old_ones_still_load(tmp_path):
    import json

    from ffterm_core.records import did_not_learn
    from ffterm_core.store.rundir import read_final
    from ffterm_core.training.session import Session

    s = Session(RunConfig(dataset="synthetic", device="cpu", epochs=1, layers=1, final_pvalues=False), tmp_path / "r")
    s.start()
    s.join(300)
    assert s.state == "finished", s.error
    assert read_final(tmp_path / "r")["matmul_precision"] == "ieee"
    final = json.loads((tmp_path / "r" / "final.json").read_text())
    assert final["did_not_learn"] is did_not_learn(final["test_accuracy"], 10)  # the one rule, written once
    del final["matmul_precision"]  # a run of an earlier ffterm
    (tmp_path / "r" / "final.json").write_text(json.dumps(final))
    assert "matmul_precision" not in read_final(tmp_path / "r")


def test_the_compile_row_times_each_step_compiled_and_eager_and_compiling_apart(monkeypatch):
    from ffterm_core.bench.benchmark import _bench_data, _compiled
    from ffterm_core.config import from_dict

    compiled = []

    def recorded(fn):  # torch.compile itself takes minutes on a CPU; the row's bookkeeping is what is checked
        compiled.append(fn)
        return fn

    monkeypatch.setattr(torch, "compile", recorded)
    cpu = torch.device("cpu")
    cfg = from_dict({"model": "ff", "dataset": "synthetic", "epochs": 1, "device": "cpu"})
    data, _ = _bench_data("synthetic", None, cpu, {"train": 400, "test": 100})
    lines: list[str] = []
    row = _compiled(cfg, data, cpu, 2, lines.append)
    assert list(row) == ["ff", "bpff", "bp"] and len(compiled) == 3  # one compiled trainer a step, eager ones not
    for r in row.values():
        assert positive(r["on_s"]) and positive(r["off_s"]) and positive(r["compile_s"])
        assert r["speedup"] == pytest.approx(r["off_s"] / r["on_s"])
    assert all("torch.compile" in line and "compiling" in line for line in lines)
