"""The `lmi-deploy` command line: commands parse, call the Python API and report; nothing else."""
