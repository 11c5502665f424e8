"""Benchmarks: python -m benchmarks.kernels"""
