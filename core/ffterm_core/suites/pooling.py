"""Runs of one setting over several seeds, pooled as mean ± std (how the study reports its tables).

`summarize(run_dirs)` pools the finished runs' final.json; `mean_std` is the one estimator every
suite table uses (sample standard deviation, undefined values skipped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ffterm_core.formatting import fmt_pm
from ffterm_core.records import CHANCE_MULTIPLE
from ffterm_core.store import rundir
from ffterm_core.store.validation import final_did_not_learn
from ffterm_core.suites.departures import STUDY_SEED_COUNT, departures
from ffterm_core.suites.spec import SuiteError

# per-layer figures of final.json summarised across seeds: (label, path into the layer dict)
LAYER_FIGURES: list[tuple[str, tuple[str, ...]]] = [
    ("sparsity", ("sparsity",)),
    ("ensemble size %", ("ensemble_size_pct",)),
    ("units p>0.05", ("n_units_p_gt_0_05",)),
    ("ρ⁺ mean", ("rho_plus", "mean")),
    ("bias mean", ("bias", "mean")),
]


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation of the defined values (None/NaN skipped)."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(xs)}


# settings that may differ between runs pooled in one summary (everything else must match)
POOLABLE_KEYS = frozenset(
    {
        "seed",
        "name",
        "description",
        "device",
        "data_dir",
        "eval_every",
        "analysis_samples",
        "checkpoint_minutes",
        "final_pvalues",
        "threads",
    }
)


def expand_run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories from paths that are run directories or folders of seeds (holding seed-*/)."""
    out = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise SuiteError(f"{p}: no such directory; give run directories or a suite directory")
        if (p / rundir.CONFIG).exists():
            out.append(p)
            continue
        seeds = sorted(p.glob("seed-*"), key=lambda d: int(d.name[5:]) if d.name[5:].isdigit() else 0)
        if not seeds:
            raise SuiteError(f"{p}: neither a run directory nor a suite directory (no config.yaml, no seed-*/)")
        out.extend(seeds)
    return out


def summarize(run_dirs: list[Path]) -> dict[str, Any]:
    """Mean ± std over the finished runs among `run_dirs` (each with a final.json).

    The result lists the directories left out because they have not finished (`skipped`). Runs
    with different settings (other than the seed and bookkeeping) are refused, as are repeated seeds.
    """
    finals, skipped, where = [], [], []
    for d in run_dirs:
        path = Path(d) / rundir.FINAL
        if path.exists():
            finals.append(rundir.read_final(d))
            where.append(path)
        else:
            skipped.append(str(d))
    if not finals:
        raise SuiteError(f"no finished runs among {len(run_dirs)} directories; run them to the end first")
    reference = finals[0]["config"]
    for f in finals[1:]:
        differ = sorted(
            k
            for k in set(reference) | set(f["config"])
            if k not in POOLABLE_KEYS and reference.get(k) != f["config"].get(k)
        )
        if differ:
            raise SuiteError(f"the runs differ in {', '.join(differ)}; summarise one setting at a time")
    seeds = [f["config"]["seed"] for f in finals]
    if len(set(seeds)) < len(seeds):
        raise SuiteError(f"seeds repeat ({sorted(seeds)}): the same run counted twice would shrink the std")
    num_layers = max(len(f["layers"]) for f in finals)
    layers = []
    for i in range(num_layers):
        accuracy = _numbers([_at(f["layer_accuracy"], i) for f in finals], where, f"layer_accuracy[{i}]")
        row: dict[str, Any] = {"layer": i + 1, "accuracy": mean_std(accuracy)}
        for label, keys in LAYER_FIGURES:
            values = [_dig(_at(f["layers"], i), keys) for f in finals]
            row[label] = mean_std(_numbers(values, where, f"layers[{i}].{'.'.join(keys)}"))
        layers.append(row)
    summary = {
        "model": finals[0]["config"]["model"],
        "dataset": finals[0]["config"]["dataset"],
        "runs": len(finals),
        "seeds": sorted(seeds),
        "skipped": skipped,
        "test_accuracy": mean_std(_numbers([f["test_accuracy"] for f in finals], where, "test_accuracy")),
        "wall_seconds": mean_std(_numbers([f["wall_seconds"] for f in finals], where, "wall_seconds")),
        "layers": layers,
        "did_not_learn": [str(p.parent) for f, p in zip(finals, where) if final_did_not_learn(f)],
        "not_the_study": _not_the_study(reference, len(finals)),
    }
    held = [f["heldout"] for f in finals if f.get("heldout")]
    if held:
        summary["heldout"] = {
            "class": held[0]["class"],
            "accuracy_seen": mean_std([h["accuracy_seen"] for h in held]),
            "accuracy_heldout": mean_std([h["accuracy_heldout"] for h in held]),
        }
    return summary


def _not_the_study(config: dict[str, Any], runs: int) -> list[str]:
    """Where these runs are not the study's settings: their settings, and fewer seeds than its 10."""
    lines = [what] if (what := departures(config, POOLABLE_KEYS)) else []
    if runs < STUDY_SEED_COUNT:
        lines.append(f"{runs} seed{'s' if runs != 1 else ''} (the study's {STUDY_SEED_COUNT})")
    return lines


def _at(items: Any, i: int) -> Any:
    return items[i] if isinstance(items, list) and i < len(items) else None


def _dig(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _numbers(values: list[Any], files: list[Path], what: str) -> list[float | None]:
    """`values` (one per file), each a number or None; SuiteError naming the file of any other."""
    for value, path in zip(values, files):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise SuiteError(f"{path}: {what} is {value!r:.40}, not a number; remove the file or train the run again")
    return values


def to_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# {summary['model'].upper()} on {summary['dataset']}: {summary['runs']} runs "
        f"(seeds {', '.join(map(str, summary['seeds']))})",
        "",
        f"Test accuracy: **{fmt_pm(summary['test_accuracy'], 4)}** (mean ± std over runs)",
        "",
    ]
    if summary.get("did_not_learn"):
        lines += [
            f"**⚠ Did not learn (final test accuracy below {CHANCE_MULTIPLE:g}× chance), pooled as they are: "
            f"{', '.join(summary['did_not_learn'])}**",
            "",
        ]
    if summary.get("not_the_study"):
        lines += [f"**Not the study's settings: {'; '.join(summary['not_the_study'])}**", ""]
    if summary.get("skipped"):
        lines += [f"Not finished, left out: {', '.join(summary['skipped'])}", ""]
    if "heldout" in summary:
        h = summary["heldout"]
        lines += [
            f"Held-out class {h['class']}: accuracy on the seen classes {fmt_pm(h['accuracy_seen'], 4)}, "
            f"on class {h['class']} {fmt_pm(h['accuracy_heldout'], 4)}",
            "",
        ]
    header = ["layer", "accuracy"] + [label for label, _ in LAYER_FIGURES]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary["layers"]:
        cells = [str(row["layer"]), fmt_pm(row["accuracy"])] + [
            fmt_pm(row[label], 1 if "%" in label or "units" in label else 3) for label, _ in LAYER_FIGURES
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
