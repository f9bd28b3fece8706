"""kubectl, run against one cluster through a private, temporary kubeconfig.

The kubeconfig holds the caller's short-lived access token and lives in a
temporary folder only this process can read, so the user's ~/.kube/config is
left alone. What the kubeconfig says (which cluster, which token) is the
caller's business: see gke.kubeconfig.
"""
import collections
import os
import shutil
import subprocess
import tempfile
from typing import Optional, Sequence

from deploy.infra import errors

Result = collections.namedtuple('Result', 'code out err')


class Kubectl:
  """Runs kubectl against one cluster."""

  def __init__(self, binary: Optional[str] = None):
    """Finds kubectl.

    Args:
      binary: the kubectl executable; default: the one on PATH.

    Raises:
      InfraError: kubectl is not installed.
    """
    self.binary = binary or shutil.which('kubectl')
    if not self.binary:
      raise errors.InfraError(
          'kubectl is not installed (needed to install Kubeflow Pipelines): '
          '`gcloud components install kubectl`, or see '
          'https://kubernetes.io/docs/tasks/tools/ ; or run with '
          '--skip-kfp to stop after the cluster.')
    self._dir = None
    self.kubeconfig = None

  def configure(self, kubeconfig: str) -> None:
    """Points kubectl at a cluster through a private temporary kubeconfig.

    Args:
      kubeconfig: the kubeconfig file's contents (it holds a token).
    """
    if self._dir is None:
      self._dir = tempfile.TemporaryDirectory(prefix='kubeconfig-')
    self.kubeconfig = os.path.join(self._dir.name, 'config')
    descriptor = os.open(self.kubeconfig,
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, 'w') as f:
      f.write(kubeconfig)

  def run(self, args: Sequence[str], check: bool = True) -> Result:
    """Runs `kubectl ARGS` and returns its exit code and output.

    Raises:
      InfraError: `check` is set and kubectl failed.
    """
    command = [self.binary] + (['--kubeconfig', self.kubeconfig]
                               if self.kubeconfig else []) + list(args)
    done = subprocess.run(command, capture_output=True, text=True,
                          check=False)
    if check and done.returncode != 0:
      raise errors.InfraError(
          f'`kubectl {" ".join(args)}` failed: {done.stderr.strip()}')
    return Result(done.returncode, done.stdout.strip(), done.stderr.strip())

  def close(self) -> None:
    """Deletes the temporary kubeconfig, if one was written."""
    if self._dir is not None:
      self._dir.cleanup()
      self._dir = None
