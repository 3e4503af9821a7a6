# The two commands of the README. Everything else is in scripts/.
.PHONY: run test setup

run: setup  ## set up, then run myevents on the embedded SQLite default
	.venv/bin/myevents serve

test:  ## set up, then run the whole test suite
	scripts/test

setup:
	scripts/bootstrap
