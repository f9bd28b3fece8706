"""Stops TensorFlow 2.16's AutoGraph from rewriting the tf_keras library.

AutoGraph converts Python code called inside tf.function unless the code's
module is on its "do not convert" list. TF 2.16 lists `keras` but not
`tf_keras`, the Keras 2 package that TFX 1.16 and TFT use, so the first
`model.fit` re-parses and converts much of tf_keras: about 18 s of the
Trainer's time on this project, for no change in behaviour (tf_keras is
written to run in graph mode unconverted, like `keras`). Adding the rule
restores what later TF releases do.

Importing this module applies the rule once; it changes nothing else.
"""
from tensorflow.python.autograph.core import config as _autograph_config

_RULE = _autograph_config.DoNotConvert('tf_keras')

if not any(
    isinstance(rule, _autograph_config.DoNotConvert) and
    getattr(rule, '_prefix', None) == 'tf_keras'
    for rule in _autograph_config.CONVERSION_RULES):
  _autograph_config.CONVERSION_RULES = (
      (_RULE,) + tuple(_autograph_config.CONVERSION_RULES))
