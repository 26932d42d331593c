"""Where a summary's runs are not the study's settings: each setting's config against the study's preset.

The study's preset of a run is the shipped ``MODEL-DATASET`` preset (``-l1`` with ℓ1 goodness), the one
the study's tables were made with. A quick preset, a `--set` override or a train_limit shows up as the
settings that differ from it; the held-out class and BP's activation-ℓ1 penalty of Appendix I are the
study's own variations and are not departures. Seeds are counted by the summaries themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from ffterm_core.config import ConfigError, to_dict
from ffterm_core.store.presets import PresetError, load_preset

#: The study's seeds per setting in Tables 1-3 and 11-13 (Tables 4-5 are one run, Table 10 five).
STUDY_SEED_COUNT = 10
#: BP's activation-ℓ1 penalty in the study's Appendix I (Table 9).
STUDY_ACT_L1 = 2.5e-6
# settings the study itself varies, with the values it uses (None: any value)
_STUDY_VARIES: dict[str, tuple[Any, ...] | None] = {"heldout_class": None, "act_l1": (0.0, STUDY_ACT_L1)}


def study_preset(config: Mapping[str, Any]) -> str:
    """The name of the study's preset for a run's settings (e.g. ``ff-fashionmnist-l1``)."""
    name = f"{config.get('model')}-{config.get('dataset')}"
    return name + "-l1" if config.get("goodness") == "l1" else name


def departures(config: Mapping[str, Any], bookkeeping: Set[str]) -> str | None:
    """What in a run's settings differs from the study's preset, as one phrase; None when nothing does.
    `bookkeeping`: the settings that do not change a run's numbers (ffterm_core.suites.pooling.POOLABLE_KEYS)."""
    preset = study_preset(config)
    try:
        reference = to_dict(load_preset(preset))
    except (PresetError, ConfigError):
        return f"no study setting to compare with (no preset {preset})"
    differ = []
    for key in sorted(set(reference) & set(config)):  # a key a file lacks (an older ffterm's) says nothing
        ours, study = config[key], reference[key]
        if key in bookkeeping or ours == study:
            continue
        allowed = _STUDY_VARIES.get(key, ())
        if key in _STUDY_VARIES and (allowed is None or ours in allowed):
            continue
        differ.append(f"{key} {_text(ours)} (the study's {_text(study)})")
    return f"{', '.join(differ)} — against {preset}" if differ else None


def _text(value: Any) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def departure_lines(settings: Mapping[str, Mapping[str, Any]], bookkeeping: Set[str]) -> list[str]:
    """One line per setting (label → its config) that departs from the study's settings."""
    return [f"{label}: {what}" for label, config in settings.items() if (what := departures(config, bookkeeping))]
