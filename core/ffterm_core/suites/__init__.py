"""The suites room: many runs from one plan. A suite file's settings × seeds expanded and checked
before anything trains, the suite folder and its plan, and the executors (in process, subprocesses
over GPUs, Ray tasks, or one setting's seeds batched as one model); pooling runs across seeds."""
