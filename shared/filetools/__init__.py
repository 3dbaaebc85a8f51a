"""Tools for the files customers receive from the export: ``revisions/<n>.json``, ``index.csv``.

``lines`` reads and validates export lines; ``sources`` finds and opens revision files in a
local directory or an S3 prefix, in numeric order; ``convert`` and ``csvout`` turn them into one
NDJSON file, a JSON array or CSV; ``aliases`` follows a person's aliases; ``daily`` picks the
files and lines of given UTC days through ``index.csv``; ``reimport`` sends a file's lines back
into a site's event store, exactly once.  Inputs are only ever read.
"""
