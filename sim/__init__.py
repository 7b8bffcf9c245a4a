"""Simulation, verification and EDA flows: the cocotb runner, benches, formal proofs, waveforms and Yosys area."""
