"""Training: the fit and its callbacks, distribution strategies, CPU sharding, the temperature
fitted after it, and a run's plots."""
