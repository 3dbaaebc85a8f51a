"""The recurring CSV import and everything that writes revisions from customers' files.

``scan`` runs one bounded scan of a site; ``filerun`` imports one file from a position (the hot
path); ``cursor`` is the one answer to "where does the import stand" for the scan, ``status``
and ``preview``; ``finish`` moves finished files aside with their reports; ``sitefiles`` lists a
site's files; ``preview`` shows what the next file would import; ``progress`` is the import
part of ``status``; ``reimport`` sends export lines back into a site's store, exactly once.
"""
