"""The store bucket, bucketbridge's system of record, and the S3 adapter beneath it.

``s3`` (and ``sts``, for assumed roles) are the only modules that talk to boto3, and translate
botocore's errors into ``shared.errors``.  On top: ``revisions`` (the event store: immutable,
contiguously numbered revisions created with ``If-None-Match``), ``revisionwriter`` (the one way
revisions are written), ``sites`` (the site registry), ``ledger`` (what was exported),
``rejectreports``, ``jobstatus`` and ``reimportmarkers`` (what the store keeps beside
revisions), and ``access`` (how a site's buckets are reached).
"""
