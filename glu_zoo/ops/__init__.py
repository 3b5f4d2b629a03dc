"""Backend-neutral operations that layers build on: `glu_zoo.ops.scan`,
`glu_zoo.ops.ode` (Euler and Dormand–Prince solvers)."""
