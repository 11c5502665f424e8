"""`import edgeq.nn as qnn` (docs/python-api.md): the public name of edgeq.train.nn, the same module
object (torch is imported here, as for any edgeq.nn use)."""

import sys

from .train import nn as _nn

sys.modules[__name__] = _nn
