"""The store room: everything on disk. The run directory's file names and how each file is written
atomically, read back and validated (config, snapshots, final record, checkpoints with checksums, the
run-directory lock and the per-user registry of live runs), the in-memory history a run's snapshots
build up, and the presets. Every file is untrusted: a bad one is one line naming it and the fix."""
