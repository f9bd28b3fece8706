"""The one file a user edits: pipeline name, data, training, quality gate, cloud.

Each setting is declared as `NAME = setting(default, check)`. Every one can be
overridden, without editing this file, by an environment variable of the same
name (for CI, containers and scripts), e.g. `TRAIN_NUM_STEPS=200 make run`.
Overrides are converted to the default's type and checked like the defaults; a
bad value stops the program with a message naming the setting.

Programs read the settings as one value: `settings = configs.load(os.environ)`
gives a frozen object with the same names (`settings.TRAIN_NUM_STEPS`). Nothing
is read at import time, and nothing here calls a cloud API.
"""
import os
import sys
from typing import Mapping

from pipeline import data_files
from pipeline import setting_types
from pipeline.data_files import bundled_data
from pipeline.data_files import csv_format
from pipeline.data_files import schema_file
from pipeline.errors import ConfigError
from pipeline.setting_types import (comma_separated, derived, fraction,
                                    matches, non_empty, non_negative, one_of,
                                    optional, positive, setting)



def _derived_id(name: str, suffix: str, max_length: int) -> str:
  """`name` + `suffix` as a Google Cloud resource id: starts with a letter,
  at most `max_length` characters."""
  stem = name if name[:1].isalpha() else 'p-' + name
  return stem[:max_length - len(suffix)].rstrip('-') + suffix


def _idle_minutes(name: str, value: int) -> None:
  if not 10 <= value <= 1440:
    raise ConfigError(f'{name}={value!r} is invalid: Workbench stops an idle '
                      'instance after 10 to 1440 minutes.')


def _allow_list(name: str, value: str) -> None:
  # Imported here: the parser lives with the gate that uses it.
  from pipeline.components.anomaly_rules import parse_allow_list  # pylint: disable=g-import-not-at-top
  try:
    parse_allow_list(value)
  except ValueError as error:
    raise ConfigError(f'{name}={value!r} is invalid: {error}') from None


# --- Data -------------------------------------------------------------------
# A folder of CSV files with a header row (all files share the same columns),
# or of span folders span-1/, span-2/, ... of them, of which each run ingests
# the newest (docs/continuous_training.md).
DATA_PATH = setting(bundled_data.BUNDLED_DATA_PATH)

def _csv_mark(name: str, value: str) -> None:
  delimiter, decimal = ((csv_format.parse_delimiter(value), '.')
                        if name == 'CSV_DELIMITER' else (';', value))
  problem = csv_format.check_marks(delimiter, decimal)
  if problem:
    raise ConfigError(problem)


def _csv_encoding(name: str, value: str) -> None:
  del name  # the message names CSV_ENCODING
  problem = csv_format.check_encoding(value)
  if problem:
    raise ConfigError(problem)


# --- Pipeline ---------------------------------------------------------------
# Kubeflow Pipelines v2 accepts only lower-case letters, digits and hyphens;
# the name also becomes part of the bucket and cluster names. Each data set
# needs its own: the reviewed schema (SCHEMA_PATH) and the baseline model
# belong to the pipeline. Unset: 'taxi-tips' for the bundled data (or a copy
# or export of it), else the data folder's name (/data/road-works ->
# 'road-works'); the run prints which (pipeline/data_files/bundled_data.py).
PIPELINE_NAME = setting(
    derived(lambda s: bundled_data.pipeline_name(s.DATA_PATH)),
    check=matches(r'[a-z0-9][a-z0-9-]{0,127}',
                  'use 1-128 lower-case letters, digits and hyphens, '
                  'starting with a letter or digit (Kubeflow Pipelines v2 rule)'))

# --- The problem: label, problem type and how columns are used ----------------
# pipeline/problem_spec.py checks these against the CSV header and a sample of
# rows before any Beam job starts, and passes them to Transform and the
# Trainer inside the pipeline (so containers on Kubeflow/Vertex AI see them
# too). Column lists are comma-separated column names.
# The column to predict.
LABEL_KEY = setting('big_tipper', check=non_empty)
# Rows whose label cell is empty are left out of training and evaluation
# (ExampleGen drops them, the run's checks and summary count them); a run
# whose share of such rows is above this fraction is refused as a data error.
MAX_MISSING_LABEL_FRACTION = setting(0.10, check=fraction)
# 'binary', 'multiclass' or 'regression'; empty infers it from the label: a
# string label, or an integer label with at most 20 distinct values, is a
# classification (binary with 2 classes), a float label is a regression.
PROBLEM_TYPE = setting(
    '', check=optional(one_of('binary', 'multiclass', 'regression')))
# The defaults of DROP_COLUMNS, CATEGORICAL_COLUMNS and EVAL_SLICE_COLUMNS
# below describe the bundled taxi data: they apply to it (and to a copy or
# an export of it: CSV files with its columns) and are empty for any other
# data, unless set (pipeline/data_files/bundled_data.py).
# Columns that are never model inputs: identifiers, leaks of the label.
# Taxi: `tips` (the label is computed from it), the raw timestamp (hour, day
# and month are columns of their own), pickup_census_tract (empty in all but
# one row).
DROP_COLUMNS = setting(bundled_data.only_for_bundled_data(
    'tips,trip_start_timestamp,pickup_census_tract'))
# Integer columns that are codes, not quantities: mapped through a vocabulary
# like string columns. Integer columns with at most 10 distinct values in the
# sample are treated so without being listed.
CATEGORICAL_COLUMNS = setting(bundled_data.only_for_bundled_data(
    'trip_start_hour,trip_start_day,trip_start_month,pickup_community_area,'
    'dropoff_community_area,dropoff_census_tract'))
# Numeric columns cut into N equally filled buckets (quantiles of the
# training data) instead of being z-scored, as 'column:N,column2:M'.
BUCKETIZE_COLUMNS = setting('')
# The string and categorical columns share one vocabulary of their
# VOCAB_SIZE most frequent (column, value) pairs; values never seen in
# training fall into OOV_BUCKETS extra indices.
VOCAB_SIZE = setting(5000, check=positive)
OOV_BUCKETS = setting(10, check=positive)
# Columns with a vocabulary of their own, of at most N values, as
# 'column:N,column2:M' (e.g. for a column with very many values).
VOCAB_SIZE_OVERRIDES = setting('')

# --- CSV format (pipeline/data_files/csv_format.py) --------------------------------------
# How the CSV files are written. A spreadsheet export in Norway (Excel,
# LibreOffice: "CSV" with a Norwegian locale) separates fields with ';' and
# writes decimal commas: CSV_DELIMITER=';' CSV_DECIMAL=','. Every reader of
# the data uses these (ExampleGen, the checks before a run, predict).
# The field delimiter: one character; '\t' (or 'tab') for tab.
CSV_DELIMITER = setting(',', check=_csv_mark, parse=csv_format.parse_delimiter)
# The decimal mark of numbers: '.' or ','.
CSV_DECIMAL = setting('.', check=_csv_mark)
# The files' text encoding: 'utf-8' (a byte order mark is ignored), or
# 'cp1252' / 'latin-1' for a spreadsheet's plain "CSV" export on Windows.
CSV_ENCODING = setting(csv_format.DEFAULT_ENCODING, check=_csv_encoding)

# --- Local runs -------------------------------------------------------------
# Everything a local run writes (artifacts, metadata, served models) goes here.
LOCAL_OUTPUT_DIR = setting(os.path.join(data_files.REPO_ROOT,
                                        'tfx_output'))

# --- Local serving (make serve) ---------------------------------------------
# The port `make serve` answers on, at 127.0.0.1 (TensorFlow Serving's REST
# port by default).
def _port(name: str, value: int) -> None:
  if not 1 <= value <= 65535:
    raise ConfigError(f'{name}={value!r} must be a TCP port, 1-65535.')


SERVE_PORT = setting(8501, check=_port)
# The largest request body `make serve` scores, in bytes; a larger one is
# answered 413. The default is a Vertex AI endpoint's limit for online
# predictions (1.5 MB, about 3,000 rows of the bundled data), so a request
# that passes here passes there.
SERVE_MAX_BODY_BYTES = setting(1_500_000, check=positive)

# --- Training ---------------------------------------------------------------
TRAIN_NUM_STEPS = setting(1000, check=positive)
TRAINER_EVAL_NUM_STEPS = setting(50, check=positive)
TRAIN_BATCH_SIZE = setting(128, check=positive)
# Seeds every random source (weights, shuffling), so two runs on the same data
# give the same metrics.
RANDOM_SEED = setting(42, check=non_negative)

# --- Quality gate (docs/own_data.md) --------------------------------------
# A model is blessed (and pushed) only if it beats a fixed bar on the eval
# split. An absolute bar, when set: its accuracy at least
# EVAL_ACCURACY_THRESHOLD (classification), its root-mean-squared error at
# most EVAL_RMSE_THRESHOLD, in the label's units (regression). Always
# answering "not a big tipper" scores 0.773 on the bundled data's eval split,
# so its bar of 0.85 sits above that; other data has no absolute bar unless
# set (0: unset).
EVAL_ACCURACY_THRESHOLD = setting(derived(
    lambda s: 0.85 if bundled_data.is_bundled_data(s.DATA_PATH) else 0.0),
                                  check=fraction)
EVAL_RMSE_THRESHOLD = setting(0.0, check=non_negative)
# Without an absolute bar the model must beat the trivial model, which always
# predicts the train split's most frequent label (classification) or its mean
# (regression), by a margin: it must avoid at least this fraction of the
# trivial model's errors on the eval split (accuracy >= trivial + margin x
# (1 - trivial)), or have an RMSE at least this fraction below the trivial
# model's. One margin per problem type.
EVAL_TRIVIAL_MARGIN_BINARY = setting(0.1, check=fraction)
EVAL_TRIVIAL_MARGIN_MULTICLASS = setting(0.1, check=fraction)
EVAL_TRIVIAL_MARGIN_REGRESSION = setting(0.05, check=fraction)
# ...and its accuracy is at most this much below the currently blessed model's
# (the baseline); for regression, its RMSE at most this much above it, as a
# fraction of the baseline's RMSE. A retrain on the same data scores about
# the same (seeded, with TensorFlow's deterministic ops) and passes; it is not
# bit-for-bit the same model in another process or on another machine, and
# can score an eval row or two apart, which is under 1 % from a few hundred
# eval rows on.
EVAL_BASELINE_TOLERANCE = setting(0.01, check=fraction)
# The same on each slice of EVAL_SLICE_COLUMNS with at least
# EVAL_SLICE_MIN_EXAMPLES eval examples (smaller slices vary too much by
# chance): a model that falls further behind the baseline on any of them is
# not blessed, whatever it scores on the whole split.
EVAL_SLICE_TOLERANCE = setting(0.05, check=fraction)
EVAL_SLICE_MIN_EXAMPLES = setting(200, check=positive)
# The Evaluator also reports every metric per value of each of these columns
# (comma-separated raw column names; empty: the whole eval split only). The
# run report shows them next to the overall metrics. Each value is a slice
# with its own metrics: adding trip_start_hour (24 values) adds about 2.5 s to
# the Evaluator on the bundled data. Taxi: payment_type (bundled data only).
EVAL_SLICE_COLUMNS = setting(
    bundled_data.only_for_bundled_data('payment_type'),
    check=optional(matches(
        r'\s*[^,\s][^,]*(,\s*[^,\s][^,]*)*',  # any names but ''
        'give comma-separated column names, e.g. '
        "'payment_type,trip_start_hour'")),
    parse=comma_separated)

# --- Data quality gates (docs/data_quality.md) ------------------------------
# The reviewed schema: new data must match it (columns, types, domains,
# presence). Each pipeline has its own, schema/<PIPELINE_NAME>/schema.pbtxt
# (the bundled data's: schema/taxi-tips/). `make schema` exports the newest
# inferred schema there for review; while the file does not exist, each run
# infers a schema from its own data. Set to use another file; empty: none.
SCHEMA_PATH = setting(derived(
    lambda s: schema_file.pipeline_schema_path(s.PIPELINE_NAME)))
# Schemas inferred from the data (no reviewed schema) and `make schema`: the
# least share of a text column's values that must be in the values the
# sample showed; a smaller share of new values passes, a larger one stops
# the run. A column whose sample suggests more new values than that gets no
# list of values (docs/data_quality.md).
SCHEMA_MIN_DOMAIN_MASS = setting(0.99, check=fraction)
# Anomalies that do not stop the run: comma-separated `column` (anything in
# that column), `column:TYPE` or `*:TYPE`, with TFDV anomaly types such as
# ENUM_TYPE_UNEXPECTED_STRING_VALUES (named in the gate's message).
ALLOWED_ANOMALIES = setting('', check=_allow_list)
# Anomalies below this severity do not stop the run: ERROR or WARNING.
ANOMALY_MIN_SEVERITY = setting(
    'ERROR',
    check=matches(r'ERROR|WARNING', 'use ERROR or WARNING'))
# The checks before any Beam job read the header and this many rows of each
# CSV file; all rows are checked later by the schema and the anomaly gate.
PREFLIGHT_SAMPLE_ROWS = setting(1000, check=positive)

# --- Spans, drift and overlapping runs (docs/continuous_training.md) --------
# When DATA_PATH holds span folders span-1/, span-2/, ..., each run ingests
# the newest span, and Transform and the Trainer read the newest this many
# spans that passed the anomaly gate (the new span included), on every
# runtime: the record of accepted spans lives under the pipeline root.
TRAIN_WINDOW_SPANS = setting(3, check=positive)
# What drift between the new span and the previous one does when a column's
# distance exceeds its drift_comparator threshold in the reviewed schema:
# 'stop' stops the run before Transform, 'warn' prints it and goes on.
DRIFT_ACTION = setting(
    'stop', check=matches(r'stop|warn', 'use stop or warn'))
# A second run of the same pipeline while one is running: 'refuse' stops it
# at once naming the running one, 'wait' starts it when that has finished.
# Locally: on the same LOCAL_OUTPUT_DIR. Compiled: a lease in the pipeline
# root's bucket (pipeline/kfp_runtime/run_lease.py), taken with this value.
CONCURRENT_RUNS = setting(
    'refuse', check=matches(r'refuse|wait', 'use refuse or wait'))
# Kubeflow Pipelines and Vertex AI: a run's lease expires this long after its
# last renewal, freeing the pipeline of a killed run. Its steps renew it every
# 30 s while they run; it must outlast the longest pause between two steps
# (a pod waiting for a node and pulling the image: minutes on a cluster that
# scales up).
RUN_LEASE_TTL_MINUTES = setting(15, check=positive)

# --- Google Cloud -----------------------------------------------------------
# Only the cloud runners need these; they stop with a clear message when a
# required one is empty.
GOOGLE_CLOUD_PROJECT = setting(
    '',
    check=optional(matches(r'[a-z][a-z0-9-]{4,28}[a-z0-9]',
                           'a Google Cloud project id has 6-30 lower-case '
                           'letters, digits and hyphens, starting with a '
                           'letter')))
GOOGLE_CLOUD_REGION = setting('europe-west3')
GOOGLE_CLOUD_ZONE = setting('europe-west3-a')  # in GOOGLE_CLOUD_REGION (load checks)
GCS_BUCKET_NAME = setting(
    derived(lambda s: f'{s.GOOGLE_CLOUD_PROJECT}-{s.PIPELINE_NAME}'
            if s.GOOGLE_CLOUD_PROJECT else ''),
    check=optional(matches(r'[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]',
                           'a bucket name has 3-63 lower-case letters, '
                           'digits, dots, hyphens and underscores')))

# --- Cloud runners (kubeflow_runner.py) -------------------------------------
# The compiled specs run the pipeline image
# <region>-docker.pkg.dev/<project>/<repository>/<pipeline name>:<tag>.
ARTIFACT_REGISTRY_REPOSITORY = setting(
    'tfx-pipelines',
    check=matches(r'[a-z]([a-z0-9-]{0,61}[a-z0-9])?',
                  'an Artifact Registry repository id has 1-63 lower-case '
                  'letters, digits and hyphens, starting with a letter'))
# The image tag; empty means the short git commit of this checkout, which is
# also what the documented Cloud Build command tags the image with.
PIPELINE_IMAGE_TAG = setting(
    '',
    check=optional(matches(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}',
                           'a Docker tag has 1-128 letters, digits, '
                           'underscores, dots and hyphens')))
# Run the Beam components (CsvExampleGen, StatisticsGen, Transform,
# Evaluator) on Dataflow where their input is large enough
# (DATAFLOW_MIN_INPUT_BYTES); false runs Beam inside each component's
# container always.
USE_DATAFLOW = setting(True)
# Dataflow worker machine type and autoscaling ceiling.
DATAFLOW_MACHINE_TYPE = setting('n1-standard-4')
DATAFLOW_MAX_WORKERS = setting(4, check=positive)
# With USE_DATAFLOW, each Beam component decides when it runs: inputs of at
# least this many bytes go to Dataflow, smaller ones run on the DirectRunner
# in the component's container. A Dataflow job spends 3 to 5 minutes
# starting and stopping its workers; the slowest component per byte
# (Transform, about 5.2 MB/s in a container on a 2-core test machine) reads
# 500 MB in about 100 s, so below that Dataflow cannot finish first even on
# a pod half as fast (docs/kubeflow.md#dataflow-where-it-pays). 0: always
# Dataflow.
DATAFLOW_MIN_INPUT_BYTES = setting(500_000_000, check=non_negative)
# Train as a Vertex AI custom job and serve on a Vertex AI endpoint (both
# targets; VERTEX_SERVING, below, follows this unless set); false trains
# inside the Trainer's container and pushes to the serving folder only.
USE_VERTEX_AI = setting(True)
# Machine that runs the Vertex AI training job (the pipeline image).
VERTEX_TRAINING_MACHINE_TYPE = setting('n1-standard-4')
# The Vertex AI endpoint that blessed models are deployed to (created on first
# push), and the machine each serving replica runs on.
VERTEX_ENDPOINT_NAME = setting(derived(lambda s: s.PIPELINE_NAME))
VERTEX_SERVING_MACHINE_TYPE = setting('n1-standard-2')
# Vertex AI's prebuilt TensorFlow 2.16 prediction image, from the Artifact
# Registry multi-region nearest to GOOGLE_CLOUD_REGION.
VERTEX_SERVING_IMAGE = setting(derived(
    lambda s: '{}-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest'.format(
        'europe' if s.GOOGLE_CLOUD_REGION.startswith('europe') else
        'asia' if s.GOOGLE_CLOUD_REGION.startswith(('asia', 'australia')) else
        'us')))

# --- Serving on Vertex AI (docs/serving.md) ---------------------------------
# Both cloud targets serve every blessed model on Vertex AI: a new version of
# one model (VERTEX_MODEL_ID) on the endpoint VERTEX_ENDPOINT_NAME (above),
# taking all the traffic once its deployment is up. The serving folder in the
# bucket is written too. False: the serving folder only.
VERTEX_SERVING = setting(derived(lambda s: s.USE_VERTEX_AI))
# The Vertex AI model that holds every pushed version.
VERTEX_MODEL_ID = setting(
    derived(lambda s: _derived_id(s.PIPELINE_NAME, '', 63)),
    check=matches(r'[a-z][a-z0-9_-]{0,62}',
                  'a Vertex AI model id has 1-63 lower-case letters, digits, '
                  'hyphens and underscores, starting with a letter'))
# The version alias that marks the served version; each push and each
# rollback moves it.
VERTEX_PRODUCTION_ALIAS = setting(
    'production',
    check=matches(r'[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]',
                  'an alias has 2-128 letters, digits and hyphens, starting '
                  'with a lower-case letter'))
# Previously served versions that stay deployed, without traffic, after a push
# (for a rollback without redeploying). Each one keeps a serving node
# (VERTEX_SERVING_MACHINE_TYPE) billing; 0 undeploys them all.
VERTEX_KEEP_DEPLOYED = setting(0, check=non_negative)
# A BigQuery table, as dataset.table (in GOOGLE_CLOUD_PROJECT) or
# project.dataset.table, that the endpoint logs requests and responses to;
# empty: no logging. VERTEX_REQUEST_LOG_SAMPLING is the share logged.
VERTEX_REQUEST_LOG_TABLE = setting(
    '',
    check=optional(matches(
        r'(bq://)?([a-z][a-z0-9-]{4,28}[a-z0-9]\.)?\w{1,1024}\.[\w-]{1,1024}',
        'give dataset.table or project.dataset.table')))
VERTEX_REQUEST_LOG_SAMPLING = setting(1.0, check=fraction)
# The Vertex AI API's address; empty: the region's,
# <GOOGLE_CLOUD_REGION>-aiplatform.googleapis.com. An http:// address is a
# local stand-in, called without credentials (the tests use one).
VERTEX_API_ENDPOINT = setting('')

# --- Cloud infrastructure (pipeline/gcp_infrastructure.py) -------------------
# Read by `python pipeline/gcp_infrastructure.py`; see docs/cloud_setup.md.
# VPC network for the cluster and Dataflow workers: reused if it exists, else
# created in automatic subnet mode.
NETWORK_NAME = setting(
    'default',
    check=matches(r'[a-z]([-a-z0-9]{0,61}[a-z0-9])?',
                  'use 1-63 lower-case letters, digits and hyphens'))
# (The pipeline image's Docker repository is ARTIFACT_REGISTRY_REPOSITORY,
# above.)
# Dedicated identity of the pipeline's pods, Dataflow workers and GKE nodes.
PIPELINE_SERVICE_ACCOUNT = setting(
    derived(lambda s: _derived_id(s.PIPELINE_NAME, '-runner', 30)),
    check=matches(r'[a-z][-a-z0-9]{4,28}[a-z0-9]',
                  'a service account id has 6-30 lower-case letters, digits '
                  'and hyphens, starting with a letter'))
# GKE Standard cluster in GOOGLE_CLOUD_ZONE. Kubeflow Pipelines itself needs
# about 3 vCPUs and 8 GB; the rest is for the pipeline's own pods.
GKE_CLUSTER_NAME = setting(
    derived(lambda s: _derived_id(s.PIPELINE_NAME, '-cluster', 40)),
    check=matches(r'[a-z]([-a-z0-9]{0,38}[a-z0-9])?',
                  'a cluster name has 1-40 lower-case letters, digits and '
                  'hyphens, starting with a letter'))
GKE_MACHINE_TYPE = setting('e2-standard-4')
GKE_NODE_COUNT = setting(2, check=positive)
# Kubeflow Pipelines standalone release installed on the cluster (2.x).
KFP_VERSION = setting(
    '2.3.0',
    check=matches(r'2\.\d+\.\d+', 'pin a Kubeflow Pipelines 2.x release '
                  'such as 2.3.0'))
# A Vertex AI Workbench instance (JupyterLab) to drive the pipeline from,
# with notebooks/kubeflow_quickstart.ipynb (docs/cloud_setup.md). Off: none is
# created, and `--destroy` leaves an existing one alone.
WORKBENCH = setting(False)
# The instance, in GOOGLE_CLOUD_ZONE on NETWORK_NAME.
WORKBENCH_INSTANCE_NAME = setting(
    derived(lambda s: _derived_id(s.PIPELINE_NAME, '-workbench', 63)),
    check=matches(r'[a-z]([-a-z0-9]{0,61}[a-z0-9])?',
                  'an instance name has 1-63 lower-case letters, digits and '
                  'hyphens, starting with a letter'))
WORKBENCH_MACHINE_TYPE = setting('e2-standard-4')
# The instance stops itself after this many minutes without a running kernel
# or terminal activity (Workbench's idle shutdown: 10 to 1440 minutes).
WORKBENCH_IDLE_SHUTDOWN_MINUTES = setting(60, check=_idle_minutes)
# The instance's own identity: it may upload and run the pipeline and read
# its outputs, nothing more (deploy/infra/workbench.py lists its roles).
WORKBENCH_SERVICE_ACCOUNT = setting(
    derived(lambda s: _derived_id(s.PIPELINE_NAME, '-workbench', 30)),
    check=matches(r'[a-z][-a-z0-9]{4,28}[a-z0-9]',
                  'a service account id has 6-30 lower-case letters, digits '
                  'and hyphens, starting with a letter'))


# --- Loading -------------------------------------------------------------------


def _zone_in_region(settings) -> None:
  if not settings.GOOGLE_CLOUD_ZONE.startswith(
      settings.GOOGLE_CLOUD_REGION + '-'):
    raise ConfigError(
        f'GOOGLE_CLOUD_ZONE={settings.GOOGLE_CLOUD_ZONE!r} is not in '
        f'GOOGLE_CLOUD_REGION={settings.GOOGLE_CLOUD_REGION!r}.')


def _csv_marks_differ(settings) -> None:
  problem = csv_format.check_marks(settings.CSV_DELIMITER, settings.CSV_DECIMAL)
  if problem:
    raise ConfigError(problem)


# One field per setting above, in the same order and with the same names.
Settings = setting_types.settings_class(sys.modules[__name__])


def load(environ: Mapping[str, str]) -> Settings:
  """The settings above, each overridden by `environ`'s variable of its name.

  Args:
    environ: usually os.environ; tests and tools pass a dict.

  Returns:
    A frozen Settings object (`settings.PIPELINE_NAME`, ...).

  Raises:
    ConfigError: a value is invalid; the message names the setting.
  """
  return setting_types.load(sys.modules[__name__], Settings, environ,
                           checks=(_zone_in_region, _csv_marks_differ))


# Every command's exit status for a bad setting.
CONFIG_ERROR_STATUS = 2


def config_error_status(error: Exception) -> int:
  """Says `error` as every command of the project does, one line
  `configuration error: ...` on stderr, and returns the exit status for it,
  CONFIG_ERROR_STATUS."""
  print(f'configuration error: {error}', file=sys.stderr)
  return CONFIG_ERROR_STATUS


def load_or_exit(environ: Mapping[str, str]) -> Settings:
  """`load(environ)` for a command-line tool: a bad setting ends the process
  (config_error_status)."""
  try:
    return load(environ)
  except ConfigError as error:
    raise SystemExit(config_error_status(error)) from None
