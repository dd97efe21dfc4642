"""Design sweeps: a chip file's design space explored on dask.distributed (docs/design-sweeps.md)."""
