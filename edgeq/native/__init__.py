"""The C runtime through cffi: the one loader of edgeq._native (runtime._lib), the model runtime
(runtime.Model) and the kernels named like their C functions (kernels). Imports format only."""
