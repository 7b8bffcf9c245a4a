"""Simulation: the shared cocotb runner and the testbenches."""
