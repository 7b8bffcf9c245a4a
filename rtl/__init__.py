"""Register-transfer-level hardware: the systolic tile, the switch router and their assemblies."""
