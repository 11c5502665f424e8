"""The C runtime through cffi: the one loader of edgeq._native and the one status -> error path
(runtime.native, runtime.check), the model runtime (runtime.Model) and the kernels named like their
C functions (kernels). Imports format only."""
