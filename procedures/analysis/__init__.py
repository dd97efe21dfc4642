"""Pure analysis for the procedures: numpy in, numbers out, no steps and no I/O."""
