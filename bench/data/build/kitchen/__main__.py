"""`python -m bench.data.build.kitchen success|build ...`."""

from bench.data.build.kitchen.build import main

main()
