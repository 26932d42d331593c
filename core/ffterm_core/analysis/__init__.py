"""Representation analysis of ffterm (docs/algorithms.md, from #representations on).

Functions take numpy arrays or torch tensors and return numpy arrays or
JSON-ready python objects.  Invalid input (mismatched shapes, NaN/inf, labels
out of range) raises :class:`ValueError` with a message naming the problem.

Sparsity       :func:`hoyer_sparsity`, :func:`layer_sparsity`
Ensembles      :func:`find_ensembles`, :func:`shared_units`, :func:`jaccard`,
               :func:`ensemble_pvalues`, :func:`ensemble_pvalues_all`
Weights        :func:`weight_balance`, :func:`histogram`
Profiles       :func:`activation_profiles`, :func:`activation_map`
Probes         :func:`linear_probe`
Similarity     :func:`linear_cka`, :func:`svcca`, :func:`distance_correlation`
Per layer      :func:`analyze_layer`, :func:`analyze_heldout_layer`, :data:`LAYER_KEYS`
"""

from ffterm_core.analysis.ensembles import find_ensembles, jaccard, shared_units
from ffterm_core.analysis.layer import LAYER_KEYS, analyze_heldout_layer, analyze_layer
from ffterm_core.analysis.permutation import ensemble_pvalues, ensemble_pvalues_all
from ffterm_core.analysis.probe import linear_probe
from ffterm_core.analysis.profiles import activation_map, activation_profiles
from ffterm_core.analysis.similarity import distance_correlation, linear_cka, svcca
from ffterm_core.analysis.sparsity import hoyer_sparsity, layer_sparsity
from ffterm_core.analysis.weights import histogram, weight_balance

__all__ = [
    "LAYER_KEYS",
    "activation_map",
    "activation_profiles",
    "analyze_heldout_layer",
    "analyze_layer",
    "distance_correlation",
    "ensemble_pvalues",
    "ensemble_pvalues_all",
    "find_ensembles",
    "histogram",
    "hoyer_sparsity",
    "jaccard",
    "layer_sparsity",
    "linear_cka",
    "linear_probe",
    "shared_units",
    "svcca",
    "weight_balance",
]
