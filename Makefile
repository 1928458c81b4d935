# kafka-to-fhir: every command a user or CI runs. Settings (ports, versions, paths) live in dev/env.sh.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Where the Python lives (ruff format leaves docs/*.md alone).
PY_DIRS := beam_pipeline launcher plugins dags tests bench dev deploy

.PHONY: help up down status demo demo-synthea test unit lint bench lock composer-plan

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

up: ## start the local stack (installs what is missing; harmless when already up)
	@bash dev/stack.sh up

down: ## stop the local stack (state stays in .stack/)
	@bash dev/stack.sh down

status: ## health and memory of each local service
	@bash dev/stack.sh status

demo: ## run the main job on the local stack and show what happened
	@bash dev/demo.sh

demo-synthea: ## a whole Synthea population (tests/data/synthea-10) through the job, in the exporter's order
	@bash dev/demo.sh synthea

test: ## everything CI runs: lint, unit and integration tests on the local stack
	@bash dev/test.sh

unit: ## unit tests only, no services
	@source dev/lib.sh && py="$$(k2f_python)" && "$$py" -m pytest -m unit -q

lint: ## ruff: lint rules and formatting
	@source dev/lib.sh && ruff="$$(dirname "$$(k2f_python)")/ruff" && "$$ruff" check . && "$$ruff" format --check $(PY_DIRS)

bench: ## the benchmarks whose figures are in README.md
	@bash dev/bench.sh

lock: ## re-pin requirements.lock from the requirement files
	@bash dev/lock.sh

composer-plan: ## print the gcloud commands deploying to Cloud Composer (ENV= LOCATION= [CONFIG=k2f.json] [EXECUTE=1] runs them)
	@source dev/lib.sh && "$$(k2f_python)" deploy/composer_plan.py --environment "$(ENV)" --location "$(LOCATION)" \
	  $(if $(CONFIG),--config "$(CONFIG)") $(if $(filter 1,$(EXECUTE)),--execute)
