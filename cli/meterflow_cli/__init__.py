"""The ``meterflow`` command line: one module per group of commands, assembled in :mod:`.app`."""
