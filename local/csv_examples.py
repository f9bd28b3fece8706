"""CSV rows to serialized tf.Examples, typed by the pipeline's schema.

This is how a client (or a test) sends raw rows to the served model's
`serving_default` signature: each column becomes the feature type the schema
gives it, and empty cells are left out, exactly as CsvExampleGen does.
"""
from typing import Dict

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils

from pipeline.data_files import csv_format


def load_schema(path: str) -> schema_pb2.Schema:
  """Reads a schema.pbtxt file (such as SchemaGen's output)."""
  return io_utils.SchemaReader().read(path)


def row_to_example(row: Dict[str, str], schema: schema_pb2.Schema,
                   fmt: csv_format.CsvFormat = csv_format.CsvFormat()
                   ) -> tf.train.Example:
  """One CSV row (column -> cell text) as a tf.Example.

  Columns not in the schema are ignored; empty cells become absent features.
  Numbers are read as ExampleGen reads them (`fmt`: a decimal comma; whole
  numbers written as floats in an integer column).

  Raises:
    ValueError: a cell cannot be read as its column's type.
  """
  example = tf.train.Example()
  for feature in schema.feature:
    text = row.get(feature.name)
    if text is None or text == '':
      continue
    target = example.features.feature[feature.name]
    try:
      if feature.type == schema_pb2.INT:
        whole = fmt.whole_number(text)
        if whole is None:
          raise ValueError(text)
        target.int64_list.value.append(whole)
      elif feature.type == schema_pb2.FLOAT:
        target.float_list.value.append(float(fmt.number_text(text)))
      else:
        target.bytes_list.value.append(text.encode())
    except ValueError:
      raise ValueError(f'column {feature.name!r}: {text!r} is not '
                       f'{schema_pb2.FeatureType.Name(feature.type)}') from None
  return example
