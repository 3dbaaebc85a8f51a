"""The compiled parts of bucketbridge: the import's fast CSV path (``shared/formats/_fastcsv.c``)
and the gzip seek-point finder (``shared/formats/_gzseek.c``, on zlib).

Everything else is in pyproject.toml.  Both are optional: where they cannot be compiled the
package still installs; the import then runs on its pure Python path
(``BUCKETBRIDGE_CSV_ENGINE=auto``) and resumes gzip files from their start.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("shared.formats._fastcsv", ["shared/formats/_fastcsv.c"],
              extra_compile_args=["-O2"], optional=True),
    Extension("shared.formats._gzseek", ["shared/formats/_gzseek.c"], libraries=["z"],
              extra_compile_args=["-O2"], optional=True),
])
