"""The pipeline image's name: its tag tied to the git commit, and its digest.

    .venv/bin/python -m deploy.pipeline_image                  # the image to build
    .venv/bin/python -m deploy.pipeline_image --record-digest  # after the push

The tag is PIPELINE_IMAGE_TAG when set, else the short commit id, so the image
that `make image` builds and the one kubeflow_runner.py compiles into the
pipeline agree. Once `make image` has pushed it, `--record-digest` asks
Artifact Registry (`gcloud artifacts docker images describe`) for the digest
the tag points at and records it in image_digests.json (not committed);
kubeflow_runner.py then names the image by that digest (`...@sha256:...`),
so a tag pushed again never passes for the image a spec was compiled with.
Kubeflow Pipelines' cache keys on the image name (kubeflow/pipelines#13862).
"""
import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from typing import Dict, List, Optional

from pipeline import cloud_settings
from pipeline import configs
from pipeline.errors import ConfigError

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The sources the Dockerfile copies into the image.
IMAGE_SOURCES = ('Dockerfile', 'requirements.lock', 'models', 'pipeline')
# Tagged image -> digest, written by `make image` (git-ignored).
DIGESTS_FILE = os.path.join(_REPO_ROOT, 'image_digests.json')
_DIGEST = re.compile(r'sha256:[0-9a-f]{64}')


class RegistryError(Exception):
  """Artifact Registry could not tell the digest of a pushed image."""


def _git(*args: str) -> Optional[str]:
  try:
    result = subprocess.run(('git',) + args, cwd=_REPO_ROOT, check=False,
                            capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.TimeoutExpired):
    return None
  return result.stdout.strip() if result.returncode == 0 else None


def image_tag(override: str = '') -> str:
  """The image tag: `override` if set, else the short git commit ('' if none).

  Warns on stderr when the image sources have uncommitted changes, which an
  image built from the commit would lack.

  Args:
    override: PIPELINE_IMAGE_TAG from pipeline/configs.py.

  Returns:
    The tag, or '' when there is neither an override nor a git commit.
  """
  if override:
    return override
  tag = _git('rev-parse', '--short', 'HEAD') or ''
  if tag and _git('status', '--porcelain', '--', *IMAGE_SOURCES):
    print(f'warning: {", ".join(IMAGE_SOURCES)} have uncommitted changes; '
          f'the image tagged {tag}, built from the commit, lacks them.',
          file=sys.stderr)
  return tag


def _read_digests(path: str) -> Dict[str, str]:
  """The record at `path` ({} if there is none).

  Raises:
    ConfigError: the file is not a JSON object of image -> sha256 digest.
  """
  if not os.path.exists(path):
    return {}
  try:
    with open(path) as digests_file:
      digests = json.load(digests_file)
  except ValueError as error:
    raise ConfigError(f'{path} is not valid JSON ({error}); delete it and run '
                      '`make image` again') from None
  if not (isinstance(digests, dict) and all(
      isinstance(d, str) and _DIGEST.fullmatch(d) for d in digests.values())):
    raise ConfigError(f'{path} must map each image to a digest '
                      '"sha256:<64 hex digits>"; delete it and run `make '
                      'image` again')
  return digests


def recorded_digest(tagged_image: str, path: str = '') -> str:
  """The digest recorded for `tagged_image`, or '' if none is."""
  return _read_digests(path or DIGESTS_FILE).get(tagged_image, '')


def record_digest(tagged_image: str, digest: str, path: str = '') -> None:
  """Records that `tagged_image` points at `digest`.

  Raises:
    ConfigError: `digest` is not a sha256 digest, or the record is damaged.
  """
  path = path or DIGESTS_FILE
  if not _DIGEST.fullmatch(digest):
    raise ConfigError(f'{digest!r} is not an image digest (sha256:<64 hex '
                      f'digits>) for {tagged_image}')
  digests = _read_digests(path)
  digests[tagged_image] = digest
  temporary = path + '.tmp'
  with open(temporary, 'w') as digests_file:
    json.dump(digests, digests_file, indent=2, sort_keys=True)
    digests_file.write('\n')
  os.replace(temporary, path)


def resolve(settings: configs.Settings) -> cloud_settings.CloudSettings:
  """The cloud settings, the image by its recorded digest when there is one.

  Raises:
    ConfigError: a cloud setting is missing, or the record is damaged.
  """
  cloud = cloud_settings.from_settings(
      settings, image_tag(settings.PIPELINE_IMAGE_TAG))
  digest = recorded_digest(cloud.tagged_image)
  return dataclasses.replace(cloud, image_digest=digest) if digest else cloud


def pushed_digest(tagged_image: str) -> str:
  """The digest Artifact Registry holds for `tagged_image` (runs gcloud).

  Raises:
    RegistryError: gcloud failed or printed no digest.
  """
  command = ['gcloud', 'artifacts', 'docker', 'images', 'describe',
             tagged_image, '--format=value(image_summary.digest)']
  try:
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=120, check=False)
  except (OSError, subprocess.TimeoutExpired) as error:
    raise RegistryError(f'cannot run gcloud to read the digest of '
                        f'{tagged_image}: {error}') from None
  digest = result.stdout.strip()
  if result.returncode != 0 or not digest:
    message = ' '.join(result.stderr.split())
    raise RegistryError(f'gcloud found no pushed image {tagged_image}: '
                        f'{message}'.rstrip(': '))
  return digest


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--record-digest', action='store_true',
                      help='record the digest of the pushed image (after '
                      '`gcloud builds submit`); compiled specs then name it')
  args = parser.parse_args(argv)
  settings = configs.load_or_exit(os.environ)
  try:
    cloud = cloud_settings.from_settings(
        settings, image_tag(settings.PIPELINE_IMAGE_TAG))
  except ConfigError as error:
    return configs.config_error_status(error)
  if not args.record_digest:
    print(cloud.tagged_image)
    return 0
  try:
    digest = pushed_digest(cloud.tagged_image)
    record_digest(cloud.tagged_image, digest)
  except (RegistryError, ConfigError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  print(f'Recorded {cloud.image_name}@{digest} ({cloud.tagged_image}) in '
        f'{DIGESTS_FILE}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
