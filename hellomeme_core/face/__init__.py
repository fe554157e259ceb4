"""Driving motion: face analysis backends, head pose, expression coefficients, smoothing."""
