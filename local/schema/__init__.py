"""`make schema` (python -m local.schema): a run's inferred schema copied
into the repository for review, and the drift and skew comparators it
carries."""
