"""The local run (local_runner.py): the checks before it, one run at a time,
clean-up after an interrupted run, progress lines and the closing summary."""
