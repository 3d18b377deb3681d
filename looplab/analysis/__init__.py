"""Analysis: metrics, graphs, TensorBoard and reports, computed from a run folder's files."""
