"""Outputs: the record schema, the sinks (stdout formats, files, datasets) and the run report."""
