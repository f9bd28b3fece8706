"""SchemaGen for a pipeline without a reviewed schema: a schema that fits the
next batch, and the served model's schema as the reference.

TFX's SchemaGen writes down exactly what one sample showed: every string
value seen is a closed list, a column empty in the sample is typed BYTES, and
every column is checked alike. The next normal batch then breaks it (a
company the sample lacked, a number in a column that was empty). `fit`
relaxes what one sample cannot know (docs/data_quality.md):

- a string column keeps its list of values only when the sample shows the
  list is closed: the share of values seen exactly once (Good-Turing's
  estimate of the share a next sample holds that this one lacked) is under
  `1 - min_domain_mass`; then up to that share of unseen values passes
  (`distribution_constraints.min_domain_mass`, SCHEMA_MIN_DOMAIN_MASS), or
  on a small sample the larger share its size can vouch for (3 values in a
  split's count, `_vouched_mass`), and more stops the run; a column without
  a list gets no drift comparator either (the shares of very many values
  move by chance);
- a column without a value in the sample, and every column the model never
  reads (DROP_COLUMNS), is checked for presence only: its lifecycle stage is
  DEBUG_ONLY, which TFDV does not validate and TensorFlow Transform does not
  parse, and the validator checks that the column is there
  (pipeline/components/span_drift_validator.py);
- a column the model reads may have an empty cell where the sample had
  none: no column but the label is pinned to one value in every row (TFDV's
  `shape`);
- every other column but the label gets the default drift comparator for
  its type (`default_comparator`), so drift between spans stops a run as it
  does with a reviewed schema.

Types, numeric presence and the label stay as TFDV infers them: text in a
numeric column, a header-only file and a column that went missing still stop
the run.

`FittedSchemaGen` also writes the schema this run's data is checked against,
`reference_schema`: the schema of the data the served model was trained on,
which the Trainer saves with every model (models/model.py,
models/signatures.py `SCHEMA_IN_MODEL`) and the Pusher copies with it. The
served model is the newest in the serving folder (the last blessed one:
serving_baseline.py newest_pushed_model), read with TFX's file system on
every runtime alike (a local folder, Cloud Storage on Kubeflow Pipelines and
Vertex AI). A pipeline is so protected from its second run on with no step
by the user. On the first run there is no model: the reference is the run's
own schema, and the artifact says so (`REFERENCE_PROPERTY` empty).

The folder is a parameter, not an input artifact, on purpose: the step's
cache key is then the data's statistics alone, so a run on data that has not
changed takes the schema, Transform and the Trainer from the cache, as with
a reviewed schema; new data reruns it against the model served by then.
"""
import os
from typing import Dict, Iterable, List, Optional, Tuple

from absl import logging
from google.protobuf import text_format
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.annotations import OutputArtifact
from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from models.signatures import SCHEMA_IN_MODEL
from pipeline.components.reviewed_schema import SCHEMA_FILE_NAME
from pipeline.components.serving_baseline import newest_pushed_model

# On `reference_schema`: the served model whose schema it is; empty on a
# pipeline's first run, which has none.
REFERENCE_PROPERTY = 'reference_model'
# The lifecycle stage of a column checked for presence only.
PRESENCE_ONLY = schema_pb2.DEBUG_ONLY
# The default drift thresholds (as schema/taxi-tips/schema.pbtxt documents
# them): random 500-row samples of the bundled data stay below 0.23 and 0.07.
JENSEN_SHANNON_THRESHOLD = 0.3
L_INFINITY_THRESHOLD = 0.1


def default_comparator(feature: schema_pb2.Feature
                       ) -> Optional[schema_pb2.FeatureComparator]:
  """The default drift comparator for a column of this type, if any:
  Jensen-Shannon divergence over quantile buckets for numbers, L-infinity
  distance for strings."""
  comparator = schema_pb2.FeatureComparator()
  if feature.type in (schema_pb2.INT, schema_pb2.FLOAT):
    divergence = comparator.jensen_shannon_divergence
    divergence.threshold = JENSEN_SHANNON_THRESHOLD
    divergence.source.type = schema_pb2.HistogramSelection.QUANTILES
  elif feature.type == schema_pb2.BYTES:
    comparator.infinity_norm.threshold = L_INFINITY_THRESHOLD
  else:
    return None
  return comparator


def is_presence_only(feature: schema_pb2.Feature) -> bool:
  """Whether the schema checks `feature` for presence only (`fit`)."""
  return feature.lifecycle_stage == PRESENCE_ONLY


def _value_counts(statistics: Iterable[statistics_pb2.DatasetFeatureStatistics]
                  ) -> Dict[str, Dict[str, float]]:
  """{column: {value: count}} of the string columns, over every split."""
  counts: Dict[str, Dict[str, float]] = {}
  for split in statistics:
    for feature in split.features:
      if not feature.HasField('string_stats'):
        continue
      column = counts.setdefault(feature.path.step[-1], {})
      for bucket in feature.string_stats.rank_histogram.buckets:
        column[bucket.label] = column.get(bucket.label, 0) + bucket.sample_count
  return counts


def _smallest_split_sizes(statistics: Iterable[
    statistics_pb2.DatasetFeatureStatistics]) -> Dict[str, int]:
  """{column: its number of values in the split where it has fewest}."""
  sizes: Dict[str, int] = {}
  for split in statistics:
    for feature in split.features:
      stats = (feature.num_stats.common_stats
               if feature.HasField('num_stats') else
               feature.string_stats.common_stats)
      name = feature.path.step[-1]
      sizes[name] = min(sizes.get(name, stats.tot_num_values),
                        stats.tot_num_values)
  return sizes


def _vouched_mass(values: int) -> float:
  """The share of a batch's values a sample of `values` values (a split's)
  can vouch are in its list: with none unseen among them, up to 3 in
  `values` of a next batch of that size may still be new (the rule of three,
  a 95 % bound). A small split would otherwise refuse a normal batch for one
  or two rare values."""
  return max(0.0, 1 - 3 / values) if values else 0.0


def _valued_columns(statistics: Iterable[
    statistics_pb2.DatasetFeatureStatistics]) -> set:
  """The columns with at least one value in some split."""
  valued = set()
  for split in statistics:
    for feature in split.features:
      stats = (feature.num_stats.common_stats
               if feature.HasField('num_stats') else
               feature.string_stats.common_stats)
      if stats.tot_num_values > 0:
        valued.add(feature.path.step[-1])
  return valued


def fit(schema: schema_pb2.Schema,
        statistics: List[statistics_pb2.DatasetFeatureStatistics],
        min_domain_mass: float, presence_only: Iterable[str] = (),
        label: str = '') -> schema_pb2.Schema:
  """The inferred `schema` made to fit the next batch (see module doc).

  Args:
    schema: TFDV's schema inferred from `statistics`.
    statistics: the statistics of each split of the sample.
    min_domain_mass: SCHEMA_MIN_DOMAIN_MASS, the least share of a string
      column's values that must be in its list.
    presence_only: the columns the model never reads (DROP_COLUMNS).
    label: LABEL_KEY, which gets no drift comparator.

  Returns:
    A fitted copy of `schema`.
  """
  fitted = schema_pb2.Schema()
  fitted.CopyFrom(schema)
  counts = _value_counts(statistics)
  split_sizes = _smallest_split_sizes(statistics)
  valued = _valued_columns(statistics)
  unread = set(presence_only)
  for feature in fitted.feature:
    name = feature.name
    if name not in valued or name in unread:
      # What a sample never showed is not a rule; what the model never reads
      # only has to be there.
      for field in ('type', 'domain', 'int_domain', 'float_domain',
                    'string_domain', 'bool_domain', 'shape', 'value_count',
                    'distribution_constraints', 'drift_comparator'):
        feature.ClearField(field)
      feature.lifecycle_stage = PRESENCE_ONLY
      continue
    if feature.HasField('domain'):
      values = counts.get(name, {})
      total = sum(values.values())
      seen_once = sum(1 for count in values.values() if count == 1)
      if total and seen_once / total > 1 - min_domain_mass:
        logging.info('%s: %d of %d values seen once: no closed list of '
                     'values.', name, seen_once, total)
        feature.ClearField('domain')
      else:
        feature.distribution_constraints.min_domain_mass = min(
            min_domain_mass, _vouched_mass(split_sizes.get(name, 0)))
    if name == label:
      continue
    feature.ClearField('shape')
    if feature.type == schema_pb2.BYTES and not feature.HasField('domain'):
      # How often each of very many values occurs moves by chance from one
      # batch to the next: no drift comparator.
      continue
    if not feature.HasField('drift_comparator'):
      comparator = default_comparator(feature)
      if comparator is not None:
        feature.drift_comparator.CopyFrom(comparator)
  used = {f.domain for f in fitted.feature if f.HasField('domain')}
  kept = [d for d in fitted.string_domain if d.name in used]
  del fitted.string_domain[:]
  fitted.string_domain.extend(kept)
  return fitted


def infer(statistics: List[statistics_pb2.DatasetFeatureStatistics],
          min_domain_mass: float, presence_only: Iterable[str] = (),
          label: str = '') -> schema_pb2.Schema:
  """The fitted schema of the splits' statistics: TFDV's inference, as
  SchemaGen runs it (each split in turn, shapes inferred), then `fit`."""
  schema = None
  for split in statistics:
    split_list = statistics_pb2.DatasetFeatureStatisticsList(datasets=[split])
    schema = (tfdv.infer_schema(split_list, infer_feature_shape=True)
              if schema is None else
              tfdv.update_schema(schema, split_list, infer_feature_shape=True))
  return fit(schema, statistics, min_domain_mass, presence_only, label)


def served_schema(serving_model_dir: str) -> Optional[Tuple[str, str]]:
  """(the served model's folder, the schema saved with it), if a model
  with a schema is served from `serving_model_dir`."""
  model = newest_pushed_model(serving_model_dir)
  if model is None:
    return None
  path = os.path.join(model, SCHEMA_IN_MODEL)
  return (model, path) if fileio.exists(path) else None


def _write(schema_text: str, artifact: standard_artifacts.Schema) -> None:
  fileio.makedirs(artifact.uri)  # object stores need none; disks may
  with fileio.open(os.path.join(artifact.uri, SCHEMA_FILE_NAME), 'w') as f:
    f.write(schema_text)


@component
def FittedSchemaGen(  # pylint: disable=invalid-name
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: OutputArtifact[standard_artifacts.Schema],
    reference_schema: OutputArtifact[standard_artifacts.Schema],
    serving_model_dir: Parameter[str] = '',
    min_domain_mass: Parameter[float] = 0.99,
    presence_only: Parameter[str] = '',
    label: Parameter[str] = '',
) -> None:
  """Infers the data's fitted schema and finds the one to check it against.

  Args:
    statistics: StatisticsGen's output.
    schema: the fitted schema of this data (`infer`), which Transform and
      the Trainer read and the Trainer saves with the model.
    reference_schema: what ExampleValidator checks this data against: the
      schema saved with the model served from `serving_model_dir`, or on a
      first run `schema`.
    serving_model_dir: the Pusher's folder (empty before the first push).
    min_domain_mass: SCHEMA_MIN_DOMAIN_MASS.
    presence_only: the columns the model never reads, one a line (a
      header may hold commas, never a line break).
    label: LABEL_KEY.
  """
  splits = artifact_utils.decode_split_names(statistics.split_names)
  split_statistics = [
      stats_artifact_utils.load_statistics(statistics,
                                           split).proto().datasets[0]
      for split in splits]
  fitted = infer(split_statistics, min_domain_mass,
                 [c for c in presence_only.split('\n') if c], label)
  text = text_format.MessageToString(fitted)
  _write(text, schema)
  served = served_schema(serving_model_dir) if serving_model_dir else None
  if served is None:
    logging.info('No served model with a schema yet: nothing to check this '
                 'data against but its own schema.')
    reference_schema.set_string_custom_property(REFERENCE_PROPERTY, '')
    _write(text, reference_schema)
    return
  model_folder, path = served
  logging.info('Checking the data against the schema of the served model '
               '%s.', model_folder)
  reference_schema.set_string_custom_property(REFERENCE_PROPERTY,
                                              model_folder)
  _write(io_utils.read_string_file(path), reference_schema)
