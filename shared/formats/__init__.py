"""Pure formats: no I/O, nothing of the project but the error hierarchy.

``csvrows`` maps import CSV rows to export lines; ``csvrecords`` reads CSV records with exact
byte and line positions; ``streams`` layers buffers, gzip and the BOM over any byte source;
``exportlines`` reads and checks export lines; ``exportfiles`` writes and reads ``index.csv`` and
``status.csv``; ``importkeys`` names a site's files and where finished ones go; ``rejects`` is
the bad-row report; ``names`` checks site ids, buckets and role ARNs; ``times`` is time as the
formats write it.
"""
