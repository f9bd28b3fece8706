"""Names TensorFlow Transform's input placeholders by the one naming rule.

TFT (1.16, tf.compat.v1 mode, which Transform runs in here) names the
placeholder of each raw column after the column, replacing characters a node
name cannot hold with `_`, but keeping `>` and `/`: a column such as
'Lengdeintervall >= 5,6m' becomes a node TensorFlow refuses ("Node name
contains invalid characters"), and one ending in '/' a scope it misreads.
This module gives TFT the rule the serving signature and the Keras inputs
already use (models/features.py input_name), whose names are always valid
node names; the placeholders are looked up by column, never by node name, so
nothing else changes.

Importing this module applies the rule once (models/preprocessing.py imports
it, so Transform's process has it before TFT builds its graph).
"""
from tensorflow_transform import impl_helper as _impl_helper

from models import features

if getattr(_impl_helper, '_sanitize_scope_name', None) is not (
    features.input_name):
  _impl_helper._sanitize_scope_name = features.input_name  # pylint: disable=protected-access
