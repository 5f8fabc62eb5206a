# nova: `make run` starts the all-in-one cloud, `make test` runs every test tier.
# Both install what is missing first (Debian packages, then a virtualenv with
# the pinned Python packages) and are safe to run again.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt setup.py | cksum | cut -d' ' -f1)
CONFIG ?= etc/nova.conf

.PHONY: run test deps debian-packages python-packages test-services bench clean

run: deps
	$(VENV)/bin/twistd --nodaemon --pidfile= nova-allinone --config $(CONFIG)

test: deps test-services
	tools/run-tests $(TESTS)

deps: debian-packages python-packages

debian-packages:
	tools/install-debian-packages

python-packages: $(STAMP)

$(STAMP): requirements.txt setup.py | debian-packages
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps \
		--config-settings editable_mode=compat -e .
	rm -f $(VENV)/.installed-*
	touch $@

test-services:
	tools/start-test-services

bench: deps test-services
	$(VENV)/bin/python bench/rpc_roundtrip.py
	$(VENV)/bin/python bench/api_describe_keypairs.py
	$(VENV)/bin/python bench/objectstore.py
	$(VENV)/bin/python bench/compute_control_plane.py
	$(VENV)/bin/python bench/compute_boot.py
	$(VENV)/bin/python bench/network_ssh.py
	$(VENV)/bin/python bench/secgroup_refresh.py
	$(VENV)/bin/python bench/volume_attach.py

clean:
	rm -rf _trial_temp* build *.egg-info
