"""Performance models calibrated on the RTL, aggregated up to the full supernode."""
