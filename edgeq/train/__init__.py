"""Training (torch): quantizers (quant), layers (nn), export, post-training quantization (ptq), the
model zoo (models, its table in archs), the train loop (loop), pruning (prune) and data loaders (data). The only place
torch is imported; this __init__ imports nothing, so `edgeq.train.data` stays torch-free."""
