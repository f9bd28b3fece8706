"""Keeps library start-up noise out of the command-line tools' output.

TensorFlow's C++ notices, Google client libraries' Python-version
FutureWarnings and TensorFlow's deprecation warnings say nothing about the
user's data; call `quiet()` before TensorFlow is imported so a command prints
only its result or its one-line error.
"""
import logging
import os
import warnings


def quiet() -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  warnings.filterwarnings('ignore', category=RuntimeWarning,
                          module='tensorflow_model_analysis')
  for name in ('tensorflow', 'absl', 'apache_beam'):
    logging.getLogger(name).setLevel(logging.ERROR)
