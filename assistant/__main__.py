"""`python -m assistant` is the same as the `ra` console script."""

from assistant.cli.main import main

main()
