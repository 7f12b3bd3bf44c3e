"""The build: plain Python, or with IVR_COMPILE=1 the call path compiled by mypyc.

`make` runs `IVR_COMPILE=1 python setup.py build_ext --inplace` after installing the package;
the module list is `ivr.compiled.MODULES`. Everything else is in pyproject.toml.
"""

import os

from setuptools import setup

ext_modules = []
if os.environ.get("IVR_COMPILE") == "1":
    from mypyc.build import mypycify

    from ivr.compiled import source_paths

    ext_modules = mypycify(source_paths(), opt_level="3", group_name="ivr.hot")

setup(ext_modules=ext_modules)
