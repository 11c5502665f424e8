# setuptools shim: the cffi extension is declared here because cffi_modules is a setup() keyword,
# and build_py copies the firmware sources and board definitions into the package (edgeq/_data)
# so that a wheel can build and run boards without a checkout (edgeq/deploy/boards.py looks there).
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# top-level folders shipped as package data: the firmware (app, runtime, kernels, headers, Makefile)
# and the board definitions with their HAL sources (sim included)
DATA_DIRS = ("firmware", "boards")
SKIP = shutil.ignore_patterns("*.o", "*.d", "*.elf", "*.bin", "*.map", "__pycache__", ".*")


class build_py_with_data(build_py):
    def run(self):
        super().run()
        # an editable install reads the checkout's folders directly
        if self.dry_run or getattr(self, "editable_mode", False):
            return
        dst = os.path.join(self.build_lib, "edgeq", "_data")
        for d in DATA_DIRS:
            target = os.path.join(dst, d)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(os.path.join(HERE, d), target, ignore=SKIP)


setup(cffi_modules=["host/build_cffi.py:ffibuilder"], cmdclass={"build_py": build_py_with_data})
