"""The pipeline image's name, its tag tied to the git commit of this checkout.

    .venv/bin/python -m deploy.pipeline_image   # prints the image to build

The tag is PIPELINE_IMAGE_TAG when set, else the short commit id, so the image
that `make image` builds and the one kubeflow_runner.py compiles into the
pipeline agree. Runs `git`; nothing else.
"""
import os
import subprocess
import sys
from typing import Optional

from pipeline.errors import ConfigError

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The sources the Dockerfile copies into the image.
IMAGE_SOURCES = ('Dockerfile', 'requirements.lock', 'models', 'pipeline')


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


def main() -> int:
  from pipeline import cloud_settings  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  try:
    settings = configs.load(os.environ)
    cloud = cloud_settings.from_settings(
        settings, image_tag(settings.PIPELINE_IMAGE_TAG))
  except ConfigError as error:
    print(f'configuration error: {error}', file=sys.stderr)
    return configs.CONFIG_ERROR_STATUS
  print(cloud.image)
  return 0


if __name__ == '__main__':
  sys.exit(main())
