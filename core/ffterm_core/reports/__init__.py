"""The reports room: a run's or a suite's report (Markdown, self-contained HTML, figures, curves.csv)
and the study's tables filled from a suite's runs beside the study's published values."""
