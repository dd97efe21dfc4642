"""The campaign report: archived runs read back (xarray), figures (matplotlib, Agg) and Markdown."""
