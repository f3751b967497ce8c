"""The stemlink engine: model registry, apply layer, samplers, tasks, server, training."""
