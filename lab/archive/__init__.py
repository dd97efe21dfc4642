"""The run archive: one HDF5 file per run (reference/hdf5.md). The only h5py user in `lab`."""
