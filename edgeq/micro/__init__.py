"""The MicroPython runtime: plain modules copied to the board side by side (not imported as a
package there).  RUNTIME_FILES is every file that must travel, in dependency order: the generated
constants, the loader (CRC/popcount helpers, validation), the ops (kernels, executor) and the public
API module `edgeq_micro` that imports the other two."""

RUNTIME_FILES = ("edgeq_spec.py", "edgeq_load.py", "edgeq_ops.py", "edgeq_micro.py")
