"""The training room: the networks, the three algorithms (FF, BP/FF, BP) and their trainers, single
and batched over seeds, the session that runs the training loop in a background thread (pause, resume,
stop, checkpoints, live snapshots) and the evaluation that turns a trainer's representations into a
snapshot's analysis."""
