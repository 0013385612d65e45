# The two commands a newcomer needs: `make up` and `make test` (see README.md).
STACK := bash astro/local/stack.sh
PYTEST_ARGS ?=

.PHONY: up down status test logs

up:        ## install, start the local stack, run one sync from the recorded vendor payloads
	@$(STACK) up

down:      ## stop what `make up` started
	@$(STACK) down

status:    ## each service up/down with its URL
	@$(STACK) status

test:      ## install, start the stack (no sync), run the whole test suite
	@$(STACK) up --no-sync
	@$(STACK) test-tools
	.venv/bin/python -m pytest $(PYTEST_ARGS)

logs:      ## follow one service's log: make logs S=kafka
	@$(STACK) logs $(S)
