# mcp.platform — the two commands users need: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export MCP_LAB_DIR ?= $(CURDIR)/.lab
export MCP_VENV := $(VENV)
export PATH := $(BIN):$(PATH)
STAGE := $(CURDIR)/.build/stage/ansible_collections/mcp/platform
THOME := $(CURDIR)/.build/home
# The checkout seen as ansible_collections/mcp/platform (a symlink): for lint, sanity staging and unit tests.
FARM := $(CURDIR)/.build/collections
# What ships: the built tarball installed with its dependencies. Playbooks, molecule and integration tests use it.
DIST := $(CURDIR)/.build/dist
INSTALLED := $(CURDIR)/.build/installed
export ANSIBLE_COLLECTIONS_PATH := $(INSTALLED)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
PLAYBOOK := $(BIN)/ansible-playbook -i inventories/lab
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: help venv farm install lab-up lab-down lab-status lab-clean demo test test-fast lint sanity units component integration \
        pytest molecule changelog-lint ee-check stage bench bench-backup bench-update clean

help:
	@echo "make demo       bring the lab up and run the daily check on it"
	@echo "make test       everything CI runs (venv, lab, lint, sanity, unit, integration, molecule)"
	@echo "make test-fast  unit tests and a quick lint: the edit-test loop"
	@echo "make lab-up | lab-down | lab-status | lab-clean"
	@echo "make bench      benchmarks against the manual's own scripts (prints ratios)"
	@echo "make bench-backup | bench-update   one of them"

# ---- toolchain ---------------------------------------------------------------------------------
$(VENV)/.stamp: requirements.txt requirements-test.txt
	@command -v $(PYTHON) >/dev/null || { echo "ERROR: $(PYTHON) not found (the toolchain needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

venv: $(VENV)/.stamp

# ansible sees the checkout as ansible_collections/mcp/platform through a symlink farm.
farm:
	@mkdir -p $(FARM)/ansible_collections/mcp
	@ln -sfn $(CURDIR) $(FARM)/ansible_collections/mcp/platform

# Build the collection tarball and install it (dependencies from the venv's ansible bundle: no Galaxy here).
install: venv
	rm -rf $(DIST) $(INSTALLED)
	$(BIN)/ansible-galaxy collection build --force --output-path $(DIST) . >/dev/null
	$(BIN)/ansible-galaxy collection install --offline -p $(INSTALLED) $(DIST)/mcp-platform-*.tar.gz >/dev/null
	@echo "installed $$(basename $(DIST)/mcp-platform-*.tar.gz) into $(INSTALLED)"

# ---- the lab -----------------------------------------------------------------------------------
# The machines (hack/lab.py), then what the collection itself does to them: prepare every managed node
# (the node role: its venv, PostgreSQL client, zstd) and deploy the platform on the MCP hosts.
lab-up: venv install
	$(BIN)/python hack/lab.py up
	$(BIN)/python hack/lab.py provision

lab-down:
	@if test -x $(BIN)/python; then $(BIN)/python hack/lab.py down; else python3 hack/lab.py down; fi

lab-status: venv install
	$(BIN)/python hack/lab.py status
	$(PLAYBOOK) playbooks/lab_status.yml

lab-clean:
	@if test -x $(BIN)/python; then $(BIN)/python hack/lab.py clean; else python3 hack/lab.py clean; fi

# The main job: the morning checklist on the lab, after the nightly backup it expects to find.
demo: lab-up
	$(PLAYBOOK) mcp.platform.backup -e backup_schedule_class=daily
	$(PLAYBOOK) mcp.platform.daily_check
	@echo "Daily check report: $(MCP_LAB_DIR)/reports/latest.html (JSON beside it; metrics in mcp_daily_check.prom)"
	@echo "The lab's addresses are in README.md; make lab-status shows it again, make lab-down stops it."

# ---- tests -------------------------------------------------------------------------------------
# Ends with one pytest run (unit + component + integration) so its "N passed" line closes the output.
test: venv farm lab-up lint sanity changelog-lint ee-check molecule pytest

test-fast: venv farm
	$(BIN)/ruff check --no-cache .
	$(PYTEST) -q tests/unit

units: venv farm
	$(PYTEST) -q tests/unit

# One real local service per fixture (PostgreSQL clusters, moto, MCP SDK servers, Traefik, the ansible CLI); no lab.
component: venv farm
	$(PYTEST) -q tests/component

pytest: venv farm install
	$(PYTEST) -q -rs --durations=20 tests/unit tests/component tests/integration

integration: venv farm install
	$(PYTEST) -q -m lab tests/integration

# Python: ruff (ruff.toml, the one linter config); YAML, roles and playbooks: ansible-lint's production profile.
lint: venv farm
	$(BIN)/ruff check --no-cache .
	ANSIBLE_COLLECTIONS_PATH=$(FARM) $(BIN)/ansible-lint --offline --profile production -q

changelog-lint: venv
	$(BIN)/antsibull-changelog lint

ee-check: venv install
	rm -rf .build/ee && $(BIN)/ansible-builder create -f hack/ee/execution-environment.yml -c .build/ee >/dev/null
	@# the whole output first: grep -q would stop reading early and, under pipefail, fail the writer (BrokenPipeError)
	$(BIN)/ansible-builder introspect --sanitize $(INSTALLED) > .build/ee/introspect.txt
	grep -q "from collection mcp.platform" .build/ee/introspect.txt
	@echo "ansible-builder accepted the execution-environment definition and reads meta/execution-environment.yml"

# ansible-test only runs where the real path ends in ansible_collections/mcp/platform: a staged copy,
# with its own git repo (so files count) and an offline stand-in for the get-pip script it downloads.
# The copy holds what the collection ships (galaxy.yml build_ignore drops hack/, lab/ and bench/: lab tooling).
stage: venv
	rm -rf $(STAGE) && mkdir -p $(STAGE) $(THOME)/.ansible/test/cache
	git ls-files -z --cached --others --exclude-standard -- . ':!hack' ':!lab' ':!bench' ':!.ci' \
	  | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(STAGE)
	git -C $(STAGE) init -q && git -C $(STAGE) add -A
	cp hack/get_pip_offline.py $(THOME)/.ansible/test/cache/get_pip_24_2.py

sanity: stage
	cd $(STAGE) && HOME=$(THOME) $(BIN)/ansible-test sanity --venv --python 3.11 --color no

MOLECULE_SCENARIOS ?= node deploy daily_check backup restore maintenance failover update rollback service
molecule: venv install
	for s in $(MOLECULE_SCENARIOS); do \
	  (cd extensions && $(BIN)/molecule test -s $$s) || exit 1; \
	done

# The rollout family alone (update, rollback, service operations): molecule and the integration tests.
test-update: venv lab-up
	cd extensions && $(BIN)/molecule test -s update
	$(PYTEST) -q -rs tests/integration/test_update_rollback.py tests/integration/test_service_ops.py

# The benchmarks run against the lab as it is (make lab-up first: they stop, naming the host, when it is not up) and
# use the installed collection, like the integration tests; each puts the lab back as it found it.
bench: venv install
	$(BIN)/python bench/health.py
	$(BIN)/python bench/backup_restore.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/update.py

# One benchmark each: backup/restore on >= 800 MB + 800 MB (a scratch PostgreSQL on a PG node, so the lab's replica is
# not flooded), and the rolling update under load. BENCH_ARGS passes options (e.g. BENCH_ARGS="--size-mb 200").
BENCH_ARGS ?=
bench-backup: venv install
	$(BIN)/python bench/backup_restore.py --private-pg $(BENCH_ARGS)

bench-update: venv install
	$(BIN)/python bench/update.py $(BENCH_ARGS)

clean:
	rm -rf .build
