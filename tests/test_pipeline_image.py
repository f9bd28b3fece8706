"""The image digest `make image` records, and specs compiled by that digest.

deploy/pipeline_image.py asks `gcloud` (a fake on PATH here: no cloud call)
for the digest of the pushed tag and records it; kubeflow_runner.py, run in
this process, then names the image by digest in every place of the compiled
spec, and by tag when no digest is recorded for the current tag.
"""
import json
import os
import re

from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
import yaml
from google.protobuf import json_format

from deploy import pipeline_image
from pipeline.errors import ConfigError

PROJECT = 'test-project-123'
NAME = f'europe-west3-docker.pkg.dev/{PROJECT}/tfx-pipelines/taxi-tips'
TAGGED = f'{NAME}:digest-test'
DIGEST = 'sha256:' + '0123456789abcdef' * 4


@pytest.fixture
def record(tmp_path, monkeypatch):
  """A fresh image_digests.json; the cloud settings the tests compile with."""
  path = tmp_path / 'image_digests.json'
  monkeypatch.setattr(pipeline_image, 'DIGESTS_FILE', str(path))
  monkeypatch.setenv('GOOGLE_CLOUD_PROJECT', PROJECT)
  monkeypatch.setenv('PIPELINE_IMAGE_TAG', 'digest-test')
  for name in ('GOOGLE_CLOUD_REGION', 'ARTIFACT_REGISTRY_REPOSITORY',
               'PIPELINE_NAME', 'GCS_BUCKET_NAME'):
    monkeypatch.delenv(name, raising=False)
  return path


@pytest.fixture
def fake_gcloud(tmp_path, monkeypatch):
  """A `gcloud` first on PATH that logs its arguments and prints DIGEST."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  log = tmp_path / 'gcloud.log'
  gcloud = bin_dir / 'gcloud'
  gcloud.write_text('#!/bin/sh\n'
                    f'echo "$@" >> {log}\n'
                    'if [ -n "$FAIL" ]; then echo "ERROR: (gcloud.artifacts) '
                    'NOT_FOUND: image not found" >&2; exit 1; fi\n'
                    f'echo {DIGEST}\n')
  gcloud.chmod(0o755)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  return log


def test_record_digest_asks_the_registry_for_the_pushed_tag(
    record, fake_gcloud, capsys):
  assert pipeline_image.main(['--record-digest']) == 0
  assert fake_gcloud.read_text().split() == [
      'artifacts', 'docker', 'images', 'describe', TAGGED,
      '--format=value(image_summary.digest)']
  assert json.loads(record.read_text()) == {TAGGED: DIGEST}
  assert f'Recorded {NAME}@{DIGEST}' in capsys.readouterr().out


def test_an_image_the_registry_lacks_is_one_line(record, fake_gcloud,
                                                 monkeypatch, capsys):
  monkeypatch.setenv('FAIL', '1')
  assert pipeline_image.main(['--record-digest']) == 1
  assert capsys.readouterr().err == (
      f'error: gcloud found no pushed image {TAGGED}: ERROR: '
      '(gcloud.artifacts) NOT_FOUND: image not found\n')
  assert not record.exists()


def test_the_record_keeps_other_tags_and_refuses_non_digests(record):
  pipeline_image.record_digest(f'{NAME}:older', 'sha256:' + 'f' * 64)
  pipeline_image.record_digest(TAGGED, DIGEST)
  assert pipeline_image.recorded_digest(TAGGED) == DIGEST
  assert pipeline_image.recorded_digest(f'{NAME}:older') == 'sha256:' + 'f' * 64
  assert pipeline_image.recorded_digest(f'{NAME}:never-pushed') == ''
  with pytest.raises(ConfigError, match='is not an image digest'):
    pipeline_image.record_digest(TAGGED, 'latest')


def test_a_damaged_record_names_the_file(record):
  record.write_text('{"image": "latest"}')
  with pytest.raises(ConfigError, match='image_digests.json must map each'):
    pipeline_image.recorded_digest(TAGGED)


def _compiled_images(tmp_path):
  """Every reference to the pipeline image in a compiled Kubeflow spec: the
  steps' containers, Dataflow's --sdk_container_image, the training job."""
  import kubeflow_runner  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'compiled'
  assert kubeflow_runner.main(['--target=kubeflow',
                               f'--output_dir={out}']) == 0
  spec = yaml.safe_load((out / 'taxi-tips.kubeflow.yaml').read_text())
  deployment = json_format.ParseDict(
      spec['deploymentSpec'], pipeline_spec_pb2.PipelineDeploymentConfig())
  containers = {e.container.image for e in deployment.executors.values()}
  strings = ' '.join(_strings(spec))
  everywhere = set(re.findall(re.escape(NAME) + r'[:@][\w.:-]+', strings))
  assert strings.count('--sdk_container_image=' + NAME) >= 4  # Dataflow
  assert strings.count('"image_uri": "' + NAME) == 1  # the training job
  return containers, everywhere


def _strings(node):
  """Every string in a parsed spec, JSON-valued parameters included."""
  if isinstance(node, dict):
    for value in node.values():
      yield from _strings(value)
  elif isinstance(node, list):
    for value in node:
      yield from _strings(value)
  elif isinstance(node, str):
    yield node


def test_compiled_by_digest_when_one_is_recorded_for_the_tag(
    record, tmp_path, capsys):
  assert _compiled_images(tmp_path / 'by_tag') == ({TAGGED}, {TAGGED})

  pipeline_image.record_digest(TAGGED, DIGEST)
  by_digest = f'{NAME}@{DIGEST}'
  assert _compiled_images(tmp_path / 'by_digest') == ({by_digest},
                                                      {by_digest})
  assert f'Pipeline image: {by_digest}' in capsys.readouterr().out
