# The two commands of the README: `make run` and `make test`.
# Both install what is missing first (Debian packages, npm packages).

BUILD ?= build
DATA_DIR ?= ./data
SLIDE_DIR ?= $(DATA_DIR)/slides
PORT ?= 5000
AAPI = $(BUILD)/aapi

.PHONY: run test build deps deps-test bench clean

run: deps build
	./scripts/run.sh "$(AAPI)" "$(DATA_DIR)" "$(SLIDE_DIR)" "$(PORT)"

test: deps-test
	./scripts/test.sh

deps:
	./scripts/install-deps.sh run

deps-test:
	./scripts/install-deps.sh test

build:
	@if [ ! -f $(BUILD)/build.ninja ]; then meson setup $(BUILD); fi
	ninja -C $(BUILD)

bench: deps-test build
	./bench/run-all.sh

clean:
	rm -rf $(BUILD)
