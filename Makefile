# The two commands: `make run` and `make test`. Everything else is CMake under build*/.
SHELL := /bin/sh
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
LISTEN ?= 127.0.0.1:7373
DATA ?= $(CURDIR)/var

.PHONY: all deps build test unit-test asan-test fuzz-test run clean format

all: build

deps:
	@./deploy/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

unit-test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

asan-test: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DASAN=ON -DUBSAN=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600

fuzz-test: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFUZZ=ON -DASAN=ON -DUBSAN=ON -DWERROR=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all
	./tests/fuzz/run.sh $(FUZZ_BUILD)/bin $(FUZZ_SECONDS)

# make test: install what is missing, build, run every test, then again under ASan+UBSan, then fuzz.
test: unit-test asan-test fuzz-test
	@echo "make test: all passed"

run: build
	@echo "ptyrelay: listening on ws://$(LISTEN)/ptc1, data in $(DATA)"
	@echo "ptyrelay: admin token in $(DATA)/admin.token; connect with:"
	@echo "  $(BUILD)/bin/ptcat --url ws://$(LISTEN)/ptc1 --token \"\$$(cat $(DATA)/admin.token)\" ls"
	exec $(BUILD)/bin/ptyrelay serve --listen $(LISTEN) --data $(DATA)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
