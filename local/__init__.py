"""Tools for this machine, outside the image, one subpackage per command:
run/ (local_runner.py), report/ (make report), serving/ (make serve and
predictions), monitor/ (make monitor), schema/ (make schema); html/ draws the
pages both reports show. The modules directly here are what the commands
share: where a run writes (output_layout), what it did (run_summary), its
artifacts (run_artifacts, artifact_readers), CSV rows as examples
(csv_examples) and quiet start-up (quiet)."""
