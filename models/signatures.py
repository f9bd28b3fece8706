"""Names of the saved model's signatures and serving outputs.

Shared by the model (models/model.py), the Evaluator's configuration
(pipeline/eval_config.py) and clients, without importing Keras.

The model has three signatures over one Transform graph:

- ROWS_SIGNATURE ('serving_default'): one named input per raw column, what
  TensorFlow Serving's and Vertex AI's REST `{"instances": [{column: value,
  ...}]}` feed (Vertex AI's prebuilt TensorFlow container calls only
  'serving_default');
- EXAMPLES_SIGNATURE ('predict'): serialized raw tf.Examples, which the
  Evaluator and `python -m local.serving.predict` score. Models saved before the rows
  signature existed take examples in 'serving_default' and have no 'predict';
  TensorFlow Model Analysis, given no signature name, calls 'predict' when a
  model has one and 'serving_default' otherwise, so it scores both kinds
  (pipeline/eval_config.py);
- TRANSFORM_SIGNATURE: serialized raw examples (label included) in, the
  transformed features out. The Evaluator reads the label as the model sees
  it (a class index for a string label) through it.

The first two return the same outputs, named below.
"""

ROWS_SIGNATURE = 'serving_default'
# Beside the signatures, in the SavedModel's folder: the schema of the raw
# data the model was trained on. Without a reviewed schema, the next run
# checks its data against the served model's (pipeline/components/
# fitted_schema_gen.py). TensorFlow Serving's folder for files that travel
# with a model; loading the model ignores it.
SCHEMA_IN_MODEL = 'assets.extra/schema.pbtxt'
EXAMPLES_SIGNATURE = 'predict'
TRANSFORM_SIGNATURE = 'transform_features'
# EXAMPLES_SIGNATURE's and TRANSFORM_SIGNATURE's one input: a [batch] string
# tensor of serialized tf.Examples.
EXAMPLES_INPUT = 'examples'

# The serving outputs, for a classification...
PROBABILITIES = 'probabilities'  # binary: [batch, 1], P(class_names[1]);
# multiclass: [batch, classes], one column per class
CLASS_NAMES = 'class_names'  # [batch, classes]: the name of each class
PREDICTED_CLASS = 'predicted_class'  # [batch]: the likeliest class's name
# ...and for a regression.
PREDICTIONS = 'predictions'  # [batch, 1]: the predicted value

# How ROWS_SIGNATURE takes a row's values: a number (JSON number) for a
# numeric column, NaN when missing; text for a text column, '' when missing.
# Integer columns arrive as float64 (exact up to 2**53, and NaN is possible)
# and must hold whole numbers.
MISSING_TEXT = ''
