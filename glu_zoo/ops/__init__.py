"""Backend-neutral operations that layers build on: `glu_zoo.ops.scan`."""
