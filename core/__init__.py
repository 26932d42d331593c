"""ffterm's engine: data, networks, trainers, analysis, sessions and run directories (no UI)."""
