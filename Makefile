# The two commands a newcomer needs: `make up` and `make test` (see README.md).
# `GPUBROKER_KAFKA_BROKERS=3 make up`: Kafka as a three-broker cluster. `make test` runs the suite as
# Kafka's and Redis's admin (tests/conftest.py reads .stack/secrets.env); no service of the stack is one.
STACK := bash astro/local/stack.sh
PYTEST_ARGS ?=

.PHONY: up down status test logs key

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

key:       ## a new API key, printed last (no secrets to load first): make key PLAN=pro [ADMIN=1] [NAME="my team"]
	$(if $(PLAN),,$(error give the plan: make key PLAN=pro (free, pro, enterprise or unlimited); ADMIN=1 for the admin scope))
	@secrets="$(or $(GPUBROKER_STATE),.stack)/secrets.env"; [ -f "$$secrets" ] || { echo "no $$secrets: start the stack with make up" >&2; exit 1; }; \
	  set -a && . "$$secrets" && set +a && \
	  .venv/bin/python webapp/manage.py create_api_key --plan "$(PLAN)" --name "$(or $(NAME),made by make key)" $(if $(filter 1,$(ADMIN)),--admin)
