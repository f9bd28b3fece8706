"""The pipeline image runs the locked set the tests run.

Reads the Dockerfile, requirements.lock and scripts/lock.sh (no image is
built here) and fails when they drift apart: the base image's Python and
Apache Beam SDK must be the lock's (Dataflow runs the base image's boot
program and needs the worker's Beam to equal the launcher's), and the image
must install exactly the lock and check it.
"""
import os
import re
import shlex
import sys
from typing import List, Tuple

import pytest

from tests import helpers

DOCKERFILE = os.path.join(helpers.REPO, 'Dockerfile')
LOCK = os.path.join(helpers.REPO, 'requirements.lock')
LOCK_SCRIPT = os.path.join(helpers.REPO, 'scripts', 'lock.sh')
# Apache Beam's SDK container: apache/beam_python<X.Y>_sdk:<beam version>.
BEAM_SDK_IMAGE = re.compile(
    r'apache/beam_python(?P<python>\d+\.\d+)_sdk:(?P<beam>\S+)')


def instructions(text: str) -> List[Tuple[str, str]]:
  """The Dockerfile's (INSTRUCTION, arguments), continuations joined."""
  result, current = [], ''
  for line in text.splitlines():
    if not current and (not line.strip() or line.lstrip().startswith('#')):
      continue
    if line.rstrip().endswith('\\'):
      current += line.rstrip()[:-1] + ' '
      continue
    current += line
    keyword, _, arguments = current.strip().partition(' ')
    result.append((keyword.upper(), ' '.join(arguments.split())))
    current = ''
  return result


def lock_pins(text: str) -> dict:
  pins = {}
  for line in text.splitlines():
    match = re.match(r'([A-Za-z0-9._-]+)(\[[^\]]*\])?==(\S+)', line)
    if match:
      pins[match.group(1).lower()] = match.group(3)
  return pins


@pytest.fixture(scope='module')
def dockerfile():
  with open(DOCKERFILE) as f:
    return instructions(f.read())


@pytest.fixture(scope='module')
def lock_text():
  with open(LOCK) as f:
    return f.read()


def _base(dockerfile):
  froms = [arguments for keyword, arguments in dockerfile if keyword == 'FROM']
  assert len(froms) == 1, f'one stage expected, found FROM {froms}'
  match = BEAM_SDK_IMAGE.fullmatch(froms[0])
  assert match, f'the base {froms[0]} is not Apache Beam\'s Python SDK image'
  return match


def test_the_base_has_the_locks_python(dockerfile, lock_text):
  python = _base(dockerfile).group('python')
  with open(LOCK_SCRIPT) as f:
    assert f'--python-version {python} ' in f.read()
  assert f'# Python {python}, Linux x86_64.' in lock_text
  # The tests ran on that Python too.
  assert f'{sys.version_info.major}.{sys.version_info.minor}' == python


def test_the_base_has_the_locks_beam(dockerfile, lock_text):
  assert _base(dockerfile).group('beam') == lock_pins(lock_text)[
      'apache-beam']


def test_the_image_installs_exactly_the_lock_and_checks_it(dockerfile):
  runs = [arguments for keyword, arguments in dockerfile if keyword == 'RUN']
  installs = [command for run in runs for command in re.split(r'&&|;', run)
              if re.search(r'\bpip3?\s+install\b', command)]
  assert len(installs) == 1, installs
  words = shlex.split(installs[0])
  requirements = [words[i + 1] for i, word in enumerate(words)
                  if word in ('-r', '--requirement')]
  assert requirements == ['requirements.lock'], installs[0]
  # Nothing besides the lock: no package names, constraints or upgrades.
  allowed = {'pip', 'pip3', 'install', '-r', '--requirement',
             'requirements.lock', '--no-cache-dir',
             '--disable-pip-version-check'}
  assert set(words) <= allowed, set(words) - allowed
  # The lock is in the image before it is installed, and checked after.
  copied = [i for i, (keyword, arguments) in enumerate(dockerfile)
            if keyword == 'COPY' and 'requirements.lock' in arguments.split()]
  installed = [i for i, (keyword, arguments) in enumerate(dockerfile)
               if keyword == 'RUN' and installs[0] in arguments]
  assert copied and copied[0] < installed[0]
  assert re.search(r'\bpip3?\s+check\b', dockerfile[installed[0]][1])


@pytest.mark.parametrize('ignore_file', ['.dockerignore', '.gcloudignore'])
def test_the_build_context_holds_the_lock(ignore_file):
  with open(os.path.join(helpers.REPO, ignore_file)) as f:
    assert '!requirements.lock' in f.read().split()


def test_the_parser_sees_drift():
  # The checks above are only as good as the reading of the Dockerfile.
  drifted = instructions(
      'FROM apache/beam_python3.11_sdk:2.73.0\n'
      '# a comment\n'
      'RUN pip install -r requirements.lock \\\n'
      '    apache-beam==2.75.0\n')
  assert drifted == [
      ('FROM', 'apache/beam_python3.11_sdk:2.73.0'),
      ('RUN', 'pip install -r requirements.lock apache-beam==2.75.0')]
  match = _base(drifted)
  assert (match.group('python'), match.group('beam')) == ('3.11', '2.73.0')
  assert lock_pins('apache-beam[gcp]==2.74.0\n    # via tfx\n') == {
      'apache-beam': '2.74.0'}
