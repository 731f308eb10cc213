# elexirion: two commands on a fresh Debian bookworm machine.
#   make demo   install dependencies, build, start the server, run the demo, stop it
#   make test   install dependencies, build, run every test (ctest)
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps configure build test run demo bench fuzz format clean

all: build

deps:
	bash scripts/install-deps.sh

configure:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: deps build
	bash scripts/run-tests.sh $(BUILD_DIR) $(CTEST_ARGS)

run: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target elexirion-server
	mkdir -p var
	./$(BUILD_DIR)/server/app/elexirion-server --config deploy/config/server.yaml

demo: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target elexirion-server elexirion
	bash scripts/demo.sh $(BUILD_DIR)

bench: deps build
	bash scripts/run-benchmarks.sh $(BUILD_DIR)

format:
	find server client tests bench fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
