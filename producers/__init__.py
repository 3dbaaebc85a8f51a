"""What publishes messages and talks to operators: the scheduler and the ``bucketbridge`` CLI.

``cli`` is the entry point; each command lives in ``<name>_cmd`` and is imported only when it
runs.  ``scheduler`` decides what is due; ``demo`` runs the whole flow on an embedded S3.
"""
