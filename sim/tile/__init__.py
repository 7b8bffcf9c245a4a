"""Verification of the systolic tile: stream packing, GEMM runs and the cocotb bench."""
