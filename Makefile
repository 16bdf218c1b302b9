# kith: the make targets of the command-line contract (see README.md).
BUILD        ?= build
BUILD_BENCH  ?= build-release
CMAKE_FLAGS  ?=
PREFIX       ?= /usr/local
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)

# Debian packages needed to build, test and run kith.
DEPS = build-essential cmake pkg-config clang-format tmux \
       libsodium-dev libnice-dev libmsgpack-dev libcmocka-dev \
       libglib2.0-dev libsqlite3-dev libjson-glib-dev libncurses-dev \
       iproute2 iptables coturn jq sqlite3

# Fuzzing (make fuzz): clang and its libFuzzer/sanitizer runtimes.
FUZZ_DEPS    = clang libclang-rt-dev
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps test demo bench install clean format check-format \
        fuzz fuzz-deps fuzz-build fuzz-corpus

all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

deps:
	@missing=$$(for p in $(DEPS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	      grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends $$missing; \
	fi

test: deps all
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo: deps all
	bash tests/demo.sh $(BUILD)/bin/kith

bench: deps
	cmake -S . -B $(BUILD_BENCH) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_BENCH) -j $(JOBS)
	$(BUILD_BENCH)/bin/kith-bench ingest
	$(BUILD_BENCH)/bin/kith-bench reconcile --items 100000 --diff 100
	$(BUILD_BENCH)/bin/kith-bench reconcile --items 100000 --diff 100 --store
	$(BUILD_BENCH)/bin/kith-bench link
	$(BUILD_BENCH)/bin/kith-bench link --no-worker
	$(BUILD_BENCH)/bin/kith-bench link --frame 1024
	$(BUILD_BENCH)/bin/kith-bench mesh --nodes 10 --posts 300 --interval-ms 5
	bench/history.sh $(BUILD_BENCH)/bin/kith 4500 4000
	@if [ -x $(BUILD_BENCH)/bin/kith-sim ]; then \
	  $(BUILD_BENCH)/bin/kith-sim --nodes 1000 --messages 20 --loss 0.01 \
	    --crash 0.2 --seed 1; fi

# The libFuzzer targets of tests/fuzz (clang, ASan, UBSan): the seed
# corpora replayed, then each target fuzzed for FUZZ_SECONDS, FUZZ_JOBS
# (default 2) at a time (tests/fuzz/README.md).
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEPS="$(DEPS) $(FUZZ_DEPS)"

$(FUZZ_BUILD)/CMakeCache.txt: | fuzz-deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DKITH_FUZZ=ON

fuzz-build: fuzz-deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) --target fuzz-all -j $(JOBS)

fuzz: fuzz-build
	ctest --test-dir $(FUZZ_BUILD) -L fuzz --output-on-failure
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Rewrites the seed corpora from the real encoders (after a format change).
fuzz-corpus: fuzz-build
	rm -rf tests/fuzz/corpus
	$(FUZZ_BUILD)/bin/kith-fuzz-corpus tests/fuzz/corpus

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i core/*.[ch] net/*.[ch] cli/*.[ch] tests/*/*.c

check-format:
	clang-format --dry-run -Werror core/*.[ch] net/*.[ch] cli/*.[ch] \
	  tests/*/*.[ch] bench/*.[ch] sim/*.[ch]

clean:
	rm -rf $(BUILD) $(BUILD_BENCH) build-asan $(FUZZ_BUILD)
