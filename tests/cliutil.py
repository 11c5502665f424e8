"""Run the `edgeq` CLI as a user does (a subprocess), shared by the CLI-level tests."""

import subprocess
import sys


def edgeq(*argv, check=True, timeout=240):
    r = subprocess.run([sys.executable, "-m", "edgeq", *map(str, argv)], capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"edgeq {' '.join(map(str, argv))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r
