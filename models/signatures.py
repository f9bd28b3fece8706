"""Names of the saved model's signatures and serving outputs.

Shared by the model (models/model.py), the Evaluator's configuration
(pipeline/pipeline.py) and clients, without importing Keras.
"""

# 'serving_default' outputs, for a classification...
PROBABILITIES = 'probabilities'  # binary: [batch, 1], P(class_names[1]);
# multiclass: [batch, classes], one column per class
CLASS_NAMES = 'class_names'  # [batch, classes]: the name of each class
PREDICTED_CLASS = 'predicted_class'  # [batch]: the likeliest class's name
# ...and for a regression.
PREDICTIONS = 'predictions'  # [batch, 1]: the predicted value

# The second signature: serialized raw examples (label included) in, the
# transformed features out. The Evaluator reads the label as the model sees
# it (a class index for a string label) through it.
TRANSFORM_SIGNATURE = 'transform_features'
