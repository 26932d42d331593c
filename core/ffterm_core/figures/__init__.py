"""The figures room: matplotlib drawing (Agg, no pyplot) shared by the reports and the beyond-the-study
tools: the palette, bars, matrices, curves, and the pruning and ensemble-life figures."""
