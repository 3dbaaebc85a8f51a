"""The export: revisions copied to the customer's bucket, ``index.csv`` and ``status.csv``.

``exporter`` runs a cycle, a re-export or a status refresh; ``destination`` is the customer's
location and the two files kept current there; ``cutoff`` is which revisions a cycle may take;
``progress`` is the export part of ``status``.  What was exported is bucketbridge's own ledger
(``shared.store.ledger``), never read back from the customer's bucket.
"""
