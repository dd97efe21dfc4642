"""Characterization procedures: plans of contracts.steps, analysis in procedures.analysis.

The campaign order and the hand-off of results between procedures are in procedures.catalog.
"""
