"""Trims Google API discovery documents to the methods this project calls.

googleapiclient 1.x (pinned by TFX) fetches discovery documents online in
`build()`. The project instead ships the documents it needs in
deploy/infra/discovery/ and builds clients with `build_from_document`, so
neither tests nor real runs depend on that fetch. The full documents (compute
v1 alone is over 4 MB) come from the google-api-python-client wheel; this
script keeps only the listed methods, the schemas they reach and the
top-level fields the client library reads, and drops free-text descriptions.

Usage:
  pip download --no-deps google-api-python-client==2.187.0 -d /tmp/gapic
  python scripts/trim_discovery.py /tmp/gapic/google_api_python_client-2.187.0-py3-none-any.whl

After adding a call to a new method in deploy/infra/, list it in KEEP below
and run the script again.
"""
import argparse
import json
import os
import zipfile

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(_REPO_ROOT, 'deploy', 'infra', 'discovery')
_IN_WHEEL = 'googleapiclient/discovery_cache/documents/{}.json'

# Document name -> dotted resource paths and methods kept.
KEEP = {
    'compute.v1': [
        'networks.get', 'networks.insert',
        'firewalls.get', 'firewalls.insert',
        'globalOperations.get',
    ],
    'container.v1': [
        'projects.locations.clusters.get',
        'projects.locations.clusters.create',
        'projects.locations.clusters.delete',
        'projects.locations.operations.get',
    ],
    'serviceusage.v1': [
        'services.batchGet', 'services.batchEnable', 'operations.get',
    ],
    'iam.v1': [
        'projects.serviceAccounts.get', 'projects.serviceAccounts.create',
        'projects.serviceAccounts.getIamPolicy',
        'projects.serviceAccounts.setIamPolicy',
    ],
    'cloudresourcemanager.v1': [
        'projects.get', 'projects.getIamPolicy', 'projects.setIamPolicy',
    ],
    'artifactregistry.v1': [
        'projects.locations.repositories.get',
        'projects.locations.repositories.create',
        'projects.locations.repositories.getIamPolicy',
        'projects.locations.repositories.setIamPolicy',
        'projects.locations.operations.get',
    ],
    'notebooks.v2': [
        'projects.locations.instances.get',
        'projects.locations.instances.create',
        'projects.locations.instances.delete',
        'projects.locations.operations.get',
    ],
}

# Top-level fields that googleapiclient reads (or that identify the document).
_TOP_LEVEL = ('kind', 'discoveryVersion', 'id', 'name', 'version', 'revision',
              'title', 'documentationLink', 'protocol', 'rootUrl',
              'mtlsRootUrl', 'servicePath', 'basePath', 'baseUrl', 'batchPath',
              'parameters', 'auth')


def _strip_descriptions(node):
  """Removes free-text `description` strings (not properties named so)."""
  if isinstance(node, dict):
    return {key: _strip_descriptions(value) for key, value in node.items()
            if not (key == 'description' and isinstance(value, str))}
  if isinstance(node, list):
    return [_strip_descriptions(item) for item in node]
  return node


def _refs(node):
  """Yields every schema name referenced with $ref inside `node`."""
  if isinstance(node, dict):
    for key, value in node.items():
      if key == '$ref' and isinstance(value, str):
        yield value
      else:
        yield from _refs(value)
  elif isinstance(node, list):
    for item in node:
      yield from _refs(item)


def trim(doc, methods):
  """Returns `doc` reduced to `methods` and the schemas they reach.

  Args:
    doc: a parsed discovery document.
    methods: dotted paths such as 'projects.locations.clusters.get'.

  Returns:
    The trimmed document.

  Raises:
    KeyError: a listed method is not in the document.
  """
  out = {key: doc[key] for key in _TOP_LEVEL if key in doc}
  out['resources'] = {}
  kept_methods = []
  for path in methods:
    *resource_path, method_name = path.split('.')
    source, target = doc, out
    for part in resource_path:
      source = source['resources'][part]
      target = target.setdefault('resources', {}).setdefault(part, {})
    method = source['methods'][method_name]
    target.setdefault('methods', {})[method_name] = method
    kept_methods.append(method)
  schemas, pending = {}, list(_refs(kept_methods))
  while pending:
    name = pending.pop()
    if name not in schemas:
      schemas[name] = doc['schemas'][name]
      pending.extend(_refs(schemas[name]))
  out['schemas'] = dict(sorted(schemas.items()))
  return _strip_descriptions(out)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('wheel', help='a google-api-python-client 2.x wheel')
  args = parser.parse_args()
  with zipfile.ZipFile(args.wheel) as wheel:
    for name, methods in KEEP.items():
      doc = json.loads(wheel.read(_IN_WHEEL.format(name)))
      path = os.path.join(OUT_DIR, name + '.json')
      with open(path, 'w') as out:
        json.dump(trim(doc, methods), out, indent=1, sort_keys=True)
        out.write('\n')
      print(f'{path}: {len(methods)} methods, {os.path.getsize(path)} bytes')


if __name__ == '__main__':
  main()
