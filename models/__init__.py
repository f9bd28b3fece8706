"""The ML code: features, preprocessing (Transform) and the Keras model
(Trainer), referenced by dotted path from the pipeline. Imports nothing else
of the project."""
