"""Tools for the people who receive an export: ``revisions/<n>.json`` and ``index.csv``.

``sources`` finds and opens revision files in a local directory or an S3 prefix (through a
read-only protocol: the tools never import the store or the fleet), in numeric order;
``convert`` and ``csvout`` turn them into one NDJSON file, a JSON array or CSV; ``aliases``
follows a person's aliases; ``daily`` picks the files and lines of given UTC days through
``index.csv``.  Inputs are only ever read.  (Sending lines back into a site's store is
``shared.imports.reimport``.)
"""
