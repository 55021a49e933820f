"""`python -m gateway.cli`: the `loragate` command."""

from gateway.cli import main

main()
