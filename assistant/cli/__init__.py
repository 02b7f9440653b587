"""The `ra` command line. Each command group lives in its own module and registers on `main.app`."""
