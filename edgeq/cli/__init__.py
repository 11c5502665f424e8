"""The `edgeq` command: parse -> call -> print. `app` holds the parser and main; one module per
command group (train, eval, board, stream, export_c)."""

from .app import build_parser, main

__all__ = ["build_parser", "main"]
