"""`python -m byom_cli`: the `byom` command without its console script."""

from byom_cli.commands import main

main()
