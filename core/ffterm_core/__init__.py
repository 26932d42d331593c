"""ffterm's engine: it trains FF, BP/FF and BP networks, analyses what they learn, and keeps run directories.

It never imports the terminal app (``ffterm``) or textual; `make lint` checks that, and the layering of its
rooms, with import-linter (``[tool.importlinter]`` in the top-level pyproject.toml). The rooms, from the
bottom up (a room may import only the rooms below it):

- ``config``, ``records``, ``formatting``, ``device``: the run's settings, the typed records written to
  disk, number formatting, and the compute device.
- ``data``: datasets, the label embedding, prepared tensors.
- ``store``: the run directory, the one door to its files (names, reading, validation, writing).
- ``analysis``: what a layer's activations say (sparsity, ensembles, profiles, similarity).
- ``figures``: matplotlib drawing shared by reports and the beyond-the-study tools.
- ``training``: the algorithms, the training loop and the live evaluation.
- ``beyond``: tools on trained checkpoints (probes, comparisons, pruning).
- ``running``: runs in their own process and the control socket.
- ``suites``: many runs from one plan, locally, in subprocesses or on Ray.
- ``reports``: run and suite reports, the study's tables.
- ``bench``: the benchmark.
"""

__version__ = "0.1.0"
