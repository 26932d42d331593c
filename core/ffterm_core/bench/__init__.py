"""The bench room: `ffterm bench`, each trainer's epoch timed against the peak matmul rate and against
the typical form of the same work (the published code's way of writing it)."""
