"""The user's data files: how they are written (csv_format), their span
folders (spans), the reviewed schema that describes them (schema_file) and
the settings' defaults for the bundled taxi data (bundled_data)."""
