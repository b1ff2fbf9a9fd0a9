"""OCI registries: Docker's reference grammar, the Distribution API client, auth and settings.

``lg pull`` and ``lg push`` in their registry forms (``porcelain/registry.py``) stand on
this package; it knows HTTP and JSON, never the store: what a registry sends is handed
to the importer as a stream to verify, and what is pushed comes from the exporter.
"""
