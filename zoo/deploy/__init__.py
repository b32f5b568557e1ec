"""Deployment: the export formats table and its wrapper, the runtimes that read each format,
microcontrollers, benchmarks of every export, and prediction from an artifact alone."""
