"""The compiled part of bucketbridge: the import's fast CSV path (``shared/formats/_fastcsv.c``).

Everything else is in pyproject.toml.  The extension is optional: where it cannot be compiled
the package still installs and the import runs on its pure Python path
(``BUCKETBRIDGE_CSV_ENGINE=auto``).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("shared.formats._fastcsv", ["shared/formats/_fastcsv.c"],
                             extra_compile_args=["-O2"], optional=True)])
