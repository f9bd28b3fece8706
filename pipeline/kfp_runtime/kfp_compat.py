"""Fixes TFX 1.16's Kubeflow V2 entrypoints for open-source Kubeflow Pipelines 2.x.

Every task of the compiled pipeline runs TFX's entrypoint
(`python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`),
written against what Vertex AI Pipelines sends. The open-source Kubeflow
Pipelines driver and launcher differ (rehearsal/executor_input.py), and these
are the differences that break a run, each reported publicly
(sky-uk/kfp-operator's TFX patches, kubeflow/pipelines issue 13476):

1. Input artifact types. The driver sends an upstream artifact with an empty
   instance schema (TFX: `'NoneType' object has no attribute 'get'`), with no
   type at all (`UnboundLocalError`), or with a generic `system.*` schema
   title (`ImportError`). Fix: an input whose type names no TFX class gets the
   type its component declares, which TFX compiles into every task's
   `--json_serialized_inputs_spec_args`.
   Delete when: TFX's entrypoint (kubeflow_v2_entrypoint_utils) falls back to
   the declared type itself, or the Kubeflow Pipelines release that
   KFP_VERSION installs sends each artifact's TFX type; then
   `python -m rehearsal --shape=kfp --no-compat` gets past the first task
   that reads an upstream artifact.
2. Zero-byte directory markers (kubeflow/pipelines issue 13476). TensorFlow
   writes an empty `<directory>/` object for each directory it creates in
   Cloud Storage, at an artifact's root and down a model's layout
   (`Format-Serving/`, `variables/`, `assets/`). The launcher copies a task's
   inputs to the pod before the command starts and turns each marker into a
   file where a folder belongs: "mkdir .../model: not a directory". Fix: once
   the executor has written its outputs, remove the markers of every
   non-empty directory under each output artifact (pipeline/kfp_runtime/
   directory_markers.py). TFX's model layout is kept as it is: flattening
   `Format-Serving/` away, the published workaround, breaks Vertex AI and
   TFX's own readers.
   Delete when: the launcher of the release KFP_VERSION installs skips
   zero-byte `<dir>/` objects when it copies inputs (issue 13476 closed), and
   rehearsal/launcher_download.py is updated to that release's logic.
3. The process crashing at interpreter shutdown (C++ destructors, "pure
   virtual method called") after the executor wrote its output: the launcher
   sees a non-zero exit and fails a task that succeeded. Fix: once one of
   TFX's Kubeflow entrypoints returns successfully, flush and exit at once.
   Delete when: a task run on the cluster with this fix switched off exits 0
   after writing its output (the crash needs the cluster's builds; the
   rehearsal only reproduces its effect, rehearsal/kfp_faults/).

Every fix leaves what Vertex AI sends untouched (its types name TFX classes)
and what TFX reads intact (TensorFlow's Cloud Storage filesystem sees a
directory wherever objects share its prefix, marker or not), so the same
image serves both orchestrators.

The same hooks carry four things that are not fixes: the run lease held
around every step (pipeline/kfp_runtime/run_lease.py); with USE_DATAFLOW,
each Beam step's choice between Dataflow and the DirectRunner in its
container, made from its input size before TFX reads its arguments
(pipeline/kfp_runtime/beam_runner.py), on both orchestrators; the end of
the start-up pause of Python's collector (pipeline/startup_gc.py), which the
start-up hook begins in a process that `starting_entrypoint` recognises;
and, in an executor's step, the caches of what Beam reads again and again
while it builds and runs a pipeline (beam_signatures.py,
beam_option_views.py), as a local run has them.

`install()` is called at start-up by
pipeline/kfp_runtime/startup/sitecustomize.py, which the pipeline image puts on
PYTHONPATH (see the Dockerfile): it only registers an import hook, so a process
that never imports TFX pays nothing. Nothing in site-packages is edited.
"""
import contextlib
import functools
import importlib.abc
import logging
import os
import sys
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence

import yaml

from pipeline import startup_gc
from pipeline.kfp_runtime import beam_runner
from pipeline.kfp_runtime import directory_markers
from pipeline.kfp_runtime import entrypoint_args
from pipeline.kfp_runtime import run_lease

ENTRYPOINT_UTILS = ('tfx.orchestration.kubeflow.v2.container.'
                    'kubeflow_v2_entrypoint_utils')
ABSL_APP = 'absl.app'
# TFX's entrypoints for Kubeflow V2 tasks: the executor and ExampleGen's driver.
EXECUTOR = ('tfx.orchestration.kubeflow.v2.container.'
            'kubeflow_v2_run_executor',)
ENTRYPOINTS = frozenset(EXECUTOR + (
    'tfx.orchestration.kubeflow.v2.file_based_example_gen.driver',))
INPUTS_SPEC_FLAG = '--json_serialized_inputs_spec_args'

# (module name, attribute) -> the original, for uninstall().
_originals: Dict[Any, Any] = {}
_finder: Optional['_PatchAfterImport'] = None


def _title(artifact_type: Any) -> Optional[str]:
  """The title of an ArtifactTypeSchema proto; None when it has none."""
  kind = artifact_type.WhichOneof('kind')
  if kind == 'schema_title':
    return artifact_type.schema_title or None
  if kind == 'instance_schema':
    schema = yaml.safe_load(artifact_type.instance_schema or '')
    return schema.get('title') if isinstance(schema, dict) else None
  return None


def names_a_tfx_class(artifact_type: Any) -> bool:
  """Whether TFX's entrypoint can find the artifact class of a type."""
  title = _title(artifact_type)
  return bool(title) and not title.startswith('system.')


def declared_input_types(argv: List[str]) -> Dict[str, Any]:
  """Input key -> ArtifactTypeSchema, from the entrypoint's inputs spec flag."""
  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  # pylint: enable=g-import-not-at-top
  serialized = entrypoint_args.flag_value(argv, INPUTS_SPEC_FLAG)
  if not serialized:
    return {}
  inputs_spec = pipeline_spec_pb2.ComponentInputsSpec()
  json_format.Parse(serialized, inputs_spec, ignore_unknown_fields=True)
  return {key: spec.artifact_type
          for key, spec in inputs_spec.artifacts.items()}


def restore_declared_types(artifacts: Any,
                           declared: Dict[str, Any]) -> List[str]:
  """Gives each artifact whose type names no TFX class its declared type.

  Args:
    artifacts: ExecutorInput.inputs.artifacts (key -> ArtifactList), changed
      in place.
    declared: key -> the component's declared ArtifactTypeSchema.

  Returns:
    The keys whose types were restored.
  """
  restored = []
  for key, artifact_list in artifacts.items():
    if key not in declared:
      continue
    for artifact in artifact_list.artifacts:
      if not names_a_tfx_class(artifact.type):
        artifact.type.CopyFrom(declared[key])
        restored.append(key)
  return restored


def _patch_entrypoint_utils(module: Any) -> None:
  _patch_parse_raw_artifact_dict(module)
  _patch_translate_executor_output(module)


def _patch_parse_raw_artifact_dict(module: Any) -> None:
  """Restores the declared input types before TFX reads them (fix 1)."""
  original = module.parse_raw_artifact_dict
  if getattr(original, '_kfp_compat', False):
    return

  def parse_raw_artifact_dict(inputs_dict, name_from_id=None):
    needs_types = any(not names_a_tfx_class(artifact.type)
                      for artifact_list in inputs_dict.values()
                      for artifact in artifact_list.artifacts)
    if needs_types:
      restored = restore_declared_types(inputs_dict,
                                        declared_input_types(sys.argv))
      if restored:
        logging.info('kfp_compat: restored the declared types of %s',
                     sorted(set(restored)))
    return original(inputs_dict, name_from_id)

  parse_raw_artifact_dict._kfp_compat = True  # pylint: disable=protected-access
  _originals[(module.__name__, 'parse_raw_artifact_dict')] = original
  module.parse_raw_artifact_dict = parse_raw_artifact_dict


def remove_directory_markers(output_dict: Dict[str, List[Any]]) -> List[str]:
  """Removes the removable directory markers under every output artifact.

  A failure is logged, not raised: the outputs are complete, and Vertex AI
  reads them with the markers in place.
  """
  removed = []
  for artifacts in output_dict.values():
    for artifact in artifacts:
      if not artifact.uri:
        continue
      try:
        removed.extend(directory_markers.remove(artifact.uri))
      except Exception as error:  # pylint: disable=broad-except
        logging.warning(
            'kfp_compat: could not remove the directory markers under %s '
            '(%s); on Kubeflow Pipelines, a task that reads this artifact '
            'may fail to download it', artifact.uri, error)
  return removed


def _patch_translate_executor_output(module: Any) -> None:
  """Runs remove_directory_markers on the outputs before they are reported
  (fix 2): TFX's entrypoint calls it once, after the executor's Do()."""
  original = module.translate_executor_output
  if getattr(original, '_kfp_compat', False):
    return

  def translate_executor_output(output_dict, name_from_id):
    remove_directory_markers(output_dict)
    beam_runner.record_on(output_dict)
    return original(output_dict, name_from_id)

  translate_executor_output._kfp_compat = True  # pylint: disable=protected-access
  _originals[(module.__name__, 'translate_executor_output')] = original
  module.translate_executor_output = translate_executor_output


def running_entrypoint(names: Collection[str] = ENTRYPOINTS) -> bool:
  """Whether this process's __main__ is one of TFX's Kubeflow entrypoints
  (of `names`)."""
  main = sys.modules.get('__main__')
  spec = getattr(main, '__spec__', None)
  return spec is not None and spec.name in names


def starting_entrypoint(argv: Optional[Sequence[str]] = None,
                        names: Collection[str] = ENTRYPOINTS) -> bool:
  """Whether this process was started as `python [options] -m NAME ...` with
  NAME one of TFX's Kubeflow entrypoints (of `names`).

  Read from the command line (`argv`, default sys.orig_argv), so it can be
  asked at start-up, before Python has imported __main__ (which
  `running_entrypoint` reads). Python's own options before -m are skipped,
  with the value of those that take one (-W, -X, also written -Wvalue).
  """
  argv = sys.orig_argv if argv is None else argv
  i = 1
  while i < len(argv):
    arg = argv[i]
    if not arg.startswith('-') or arg in ('-', '--'):
      return False  # a script, the program from standard input
    if arg.startswith('--'):
      i += 2 if arg == '--check-hash-based-pycs' else 1
      continue
    for k, flag in enumerate(arg[1:], start=2):
      if flag in 'cmWX':
        attached = arg[k:]
        value = attached or (argv[i + 1] if i + 1 < len(argv) else '')
        if flag == 'c':
          return False
        if flag == 'm':
          return value in names
        i += 0 if attached else 1
        break
    i += 1
  return False


def _exit_now() -> None:
  """Exits with status 0, skipping the interpreter's shutdown."""
  logging.info('kfp_compat: the task succeeded; exiting before interpreter '
               'shutdown')
  logging.shutdown()
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(0)  # pylint: disable=protected-access


def remember_beam_answers() -> None:
  """Beam's signature and options-view caches (beam_caches.py), in this
  process: TFX's executor entrypoint has imported Beam by the time its
  app.run starts, and the start-up hook must not import it earlier."""
  from pipeline.kfp_runtime import beam_caches  # pylint: disable=g-import-not-at-top
  beam_caches.remember()


def _patch_absl_app(module: Any, exit_after_success: bool = True) -> None:
  """Wraps absl's app.run, which runs TFX's entrypoints: it ends the
  start-up pause of the collector (pipeline/startup_gc.py), the executor's
  step gets Beam's caches (remember_beam_answers) and holds the pipeline's
  run lease (pipeline/kfp_runtime/run_lease.py), a Beam step chooses
  Dataflow or the DirectRunner from its input size before TFX reads its
  arguments (pipeline/kfp_runtime/beam_runner.py), and with
  `exit_after_success` a step that succeeded exits at once (fix 3)."""
  original = module.run
  if getattr(original, '_kfp_compat', False):
    original = _originals[(module.__name__, 'run')]

  def run(*args, **kwargs):
    # TFX's entrypoint module and what it imports (TFX's orchestration,
    # TensorFlow, Beam) are loaded: the collector runs again, for the step.
    startup_gc.resume()
    lease = (run_lease.during_task(sys.argv) if running_entrypoint(EXECUTOR)
             else contextlib.nullcontext())
    try:
      with lease:
        if running_entrypoint(EXECUTOR):
          remember_beam_answers()
          # TFX's entrypoint parses sys.argv (app.run without argv).
          argv = kwargs.get('argv', args[1] if len(args) > 1 else None)
          choice = beam_runner.choose_in_argv(sys.argv if argv is None
                                              else argv)
          if choice is not None and args:
            args = (beam_runner.announcing(args[0], choice),) + args[1:]
        return original(*args, **kwargs)
    except SystemExit as exit_:
      if exit_after_success and exit_.code in (None, 0) and (
          running_entrypoint()):
        _exit_now()
      raise

  run._kfp_compat = True  # pylint: disable=protected-access
  _originals[(module.__name__, 'run')] = original
  module.run = run


class _PatchingLoader(importlib.abc.Loader):
  """Loads a module with its own loader, then patches it."""

  def __init__(self, loader: Any, patch: Callable[[Any], None]):
    self._loader = loader
    self._patch = patch

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    self._loader.exec_module(module)
    self._patch(module)

  def __getattr__(self, name):
    return getattr(self._loader, name)


class _PatchAfterImport(importlib.abc.MetaPathFinder):
  """Patches the named modules right after their first import."""

  def __init__(self, patches: Dict[str, Callable[[Any], None]]):
    self.patches = patches

  def find_spec(self, fullname, path, target=None):
    patch = self.patches.get(fullname)
    if patch is None:
      return None
    for finder in sys.meta_path:
      if finder is self or not hasattr(finder, 'find_spec'):
        continue
      spec = finder.find_spec(fullname, path, target)
      if spec is not None and spec.loader is not None:
        spec.loader = _PatchingLoader(spec.loader, patch)
        return spec
    return None


def install(exit_after_success: bool = True) -> None:
  """Applies the fixes to TFX (and absl) now or when they are imported.

  Args:
    exit_after_success: apply fix 3. Off only where TFX's entrypoint runs
      inside another program (the rehearsal's in-process mode), which must
      not exit. The run lease is held around the executor's step either
      way.
  """
  global _finder
  patches = {ENTRYPOINT_UTILS: _patch_entrypoint_utils,
             ABSL_APP: functools.partial(
                 _patch_absl_app, exit_after_success=exit_after_success)}
  for name, patch in patches.items():
    if name in sys.modules:
      patch(sys.modules[name])
  pending = {name: patch for name, patch in patches.items()
             if name not in sys.modules}
  if _finder is not None and _finder in sys.meta_path:
    sys.meta_path.remove(_finder)
  _finder = _PatchAfterImport(pending)
  sys.meta_path.insert(0, _finder)


def uninstall() -> None:
  """Undoes install(): the modules get their original functions back."""
  global _finder
  if _finder is not None and _finder in sys.meta_path:
    sys.meta_path.remove(_finder)
  _finder = None
  for (module_name, attribute), original in list(_originals.items()):
    module = sys.modules.get(module_name)
    if module is not None:
      setattr(module, attribute, original)
    del _originals[(module_name, attribute)]
