"""The zoo's architecture table (edgeq.train.models builds them): plain data, no torch, so the CLI
offers `--arch` choices without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnsupportedError


@dataclass
class ArchSpec:
    pre: tuple  # (mode, param)
    wq: str  # hidden-layer weight quantizer
    act: str  # 'sign' | 'dorefa2' | 'hwgq2' | 'hwgq2u'
    kind: str = "cnn"  # 'cnn' | 'mlp' | 'resnet8' | 'ds-cnn' | 'mobilenet'
    first_wq: str | None = None
    last_wq: str | None = None
    lr: float = 3e-3
    epochs: int = 15  # default epochs for MNIST-size data (scaled up for small data sets)
    extra: dict = field(default_factory=dict)


ARCHS = {
    "bnn-mlp": ArchSpec(("THRESH", 128), "sign", "sign", kind="mlp", lr=3e-3, epochs=20),
    "bnn-cnn": ArchSpec(("RAW", 0), "sign", "sign", lr=3e-3),
    "xnor-cnn": ArchSpec(("RAW", 0), "bwn", "sign", lr=3e-3),
    "twn-cnn": ArchSpec(("RAW", 0), "twn", "dorefa2", lr=2e-3),
    "twn5-cnn": ArchSpec(("RAW", 0), "tern5", "dorefa2", lr=2e-3),
    "dorefa-w1a2": ArchSpec(("RAW", 0), "dorefa1", "dorefa2", lr=2e-3),
    "dorefa-w2a2": ArchSpec(("QUANT", 4), "dorefa2", "dorefa2", lr=2e-3),
    "hwgq-cnn": ArchSpec(("RAW", 0), "bwn", "hwgq2", lr=2e-3),
    "hwgq-uniform": ArchSpec(("RAW", 0), "bwn", "hwgq2u", lr=2e-3),
    # reference models of the MCU benchmarks (MLPerf Tiny), written with edgeq.nn: binary (sign
    # weights and activations) and ternary (TWN weights, 2-bit activations); `input_shape` is the
    # benchmark's input (C, H, W); any input of at least the network's downsampling works
    "resnet8-bnn": ArchSpec(("RAW", 0), "sign", "sign", kind="resnet8", extra={"input_shape": (3, 32, 32)}),
    "resnet8-twn": ArchSpec(("RAW", 0), "twn", "dorefa2", kind="resnet8", lr=2e-3,
                            extra={"input_shape": (3, 32, 32)}),
    "ds-cnn-bnn": ArchSpec(("RAW", 0), "sign", "sign", kind="ds-cnn", extra={"input_shape": (1, 49, 10)}),
    "ds-cnn-twn": ArchSpec(("RAW", 0), "twn", "dorefa2", kind="ds-cnn", lr=2e-3,
                           extra={"input_shape": (1, 49, 10)}),
    "mobilenet-v1-0.25-bnn": ArchSpec(("RAW", 0), "sign", "sign", kind="mobilenet",
                                      extra={"input_shape": (3, 96, 96), "alpha": 0.25}),
    "mobilenet-v1-0.25-twn": ArchSpec(("RAW", 0), "twn", "dorefa2", kind="mobilenet", lr=2e-3,
                                      extra={"input_shape": (3, 96, 96), "alpha": 0.25}),
}
ALIASES = {"dorefa-cnn": "dorefa-w2a2", "xnor": "xnor-cnn", "bnn": "bnn-cnn", "resnet8": "resnet8-bnn",
           "ds-cnn": "ds-cnn-bnn", "mobilenet-v1-0.25": "mobilenet-v1-0.25-bnn"}
REFERENCE_MODELS = ("resnet8-bnn", "resnet8-twn", "ds-cnn-bnn", "ds-cnn-twn", "mobilenet-v1-0.25-bnn",
                    "mobilenet-v1-0.25-twn")


def arch_names() -> list:
    return sorted(ARCHS) + sorted(ALIASES)


def get_arch(name: str) -> ArchSpec:
    name = ALIASES.get(name, name)
    if name not in ARCHS:
        raise UnsupportedError(f"unknown arch {name!r}; choose one of {', '.join(arch_names())}")
    return ARCHS[name]
