"""Running blobs somewhere: the wire protocol (protocol), the serial client (client), the Target
interface (targets), streaming (stream), profiling (profile), accuracy on a data set (evaluate),
board definitions/builds/emulators/flashing (boards), a fault-injecting link (faultlink),
MicroPython deploy (micro) and C headers (export_c)."""
