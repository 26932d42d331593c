"""The beyond-the-study room: tools run on a trained checkpoint, after the fact: linear probes,
representation similarity between runs, and pruning to a network's ensembles."""
