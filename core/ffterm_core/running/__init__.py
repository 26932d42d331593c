"""The running room: a run in its own process (detached from the terminal that started it), the
control socket it serves, and the client the app and `ffterm attach` use to steer it."""
