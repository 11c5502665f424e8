# setuptools shim: the cffi extension is declared here because cffi_modules is a setup() keyword.
import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
setup(cffi_modules=["host/build_cffi.py:ffibuilder"])
