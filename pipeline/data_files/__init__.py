"""The user's data files: how they are written (csv_format), their span
folders (spans), the reviewed schema that describes them (schema_file) and
the settings' defaults for the bundled taxi data (bundled_data)."""
import os

# The repository's root, where the bundled data (data/), the reviewed schemas
# (schema/) and the default output folder (tfx_output/) are.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
