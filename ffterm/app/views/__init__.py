"""The dashboard's views, in tab order. Adding a view: a module here with a View subclass, and one
ViewSpec below (see views.base.View)."""

from __future__ import annotations

from dataclasses import dataclass

from .activations import ActivationsView
from .base import View, ViewOptions
from .compare import CompareView
from .curves import CurvesView
from .ei import EIView
from .ensembles import EnsemblesView
from .layers import LayersView
from .prune import PruneView


@dataclass(frozen=True)
class ViewSpec:
    """One tab: `name` makes its ids (tab-NAME, view-NAME) and screenshot file names."""

    name: str
    title: str
    widget: type[View]

    @property
    def tab_id(self) -> str:
        return f"tab-{self.name}"


VIEWS = [
    ViewSpec("curves", "Curves", CurvesView),
    ViewSpec("layers", "Layers", LayersView),
    ViewSpec("activations", "Activations", ActivationsView),
    ViewSpec("ensembles", "Ensembles", EnsemblesView),
    ViewSpec("ei", "E/I", EIView),
    ViewSpec("compare", "Compare", CompareView),
    ViewSpec("prune", "Prune", PruneView),
]

__all__ = ["VIEWS", "View", "ViewOptions", "ViewSpec"]
