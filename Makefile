# TOS host toolkit. `make lab` boots the lab and deploys + audits it; `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
LAB := $(PY) -m toskit.lab
INVENTORY ?= inventories/lab.py

.PHONY: venv lab lab-up lab-down lab-destroy lab-status deploy audit test test-fast test-lab

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

## The lab: boot it (idempotent), deploy, audit, one-screen summary.
lab: venv
	$(LAB) up
	$(PY) -m toskit.cycle --inventory inventories/lab.py

lab-up: venv
	$(LAB) up
lab-down: venv
	$(LAB) down
lab-destroy: venv
	$(LAB) destroy
lab-status: venv
	$(LAB) status

## Any inventory: make deploy INVENTORY=inventories/production.py (add DRY=1 for the plan only)
deploy: venv
	$(PY) -m toskit.check $(INVENTORY)
	$(VENV)/bin/pyinfra $(if $(DRY),--dry,-y) $(INVENTORY) deploy.py
audit: venv
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup tests/audit --inventory=$(INVENTORY) $(if $(LIMIT),--limit=$(LIMIT)) \
		--junitxml=.lab/run/audit.xml --audit-report=.lab/run/audit-report.md

## Tests: fast ones need no VMs; lab ones boot, deploy, audit and tear down the lab, in three
## stages (tests/lab/conftest.py): the build-up; node1's tests beside node2's and the gateway's;
## the end.
LAB_TESTS := $(VENV)/bin/pytest -q -x --durations=0 tests/lab
test-fast: venv
	$(VENV)/bin/pytest -q tests/unit
test-lab: venv
	$(LAB_TESTS) -m "not concurrent and not last"
	$(LAB_TESTS) -m concurrent -n 2 --dist loadgroup
	$(LAB_TESTS) -m last
test: test-fast test-lab

## make bench-NAME runs bench/NAME_bench.py (dashes as underscores), e.g. bench-restore-race.
bench-%: venv
	$(PY) -m bench.$(subst -,_,$*)_bench
