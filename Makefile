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

.PHONY: all deps test demo bench bench-build bench-full install clean \
        format check-format fuzz fuzz-deps fuzz-build fuzz-corpus

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

# Benchmarks (docs/performance.md): make bench runs each at a size that
# takes a few minutes at most; make bench-full runs those of issue 9 at
# their full sizes (10^6 events: 10 to 20 minutes, up to 8 GB of temporary
# disk under TMPDIR at once). Run them under the shared lock on a shared
# machine: flock /tmp/kith-heavy.lock make bench.
BENCH_BIN = $(BUILD_BENCH)/bin

bench-build: deps
	cmake -S . -B $(BUILD_BENCH) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD_BENCH) -j $(JOBS)

bench: bench-build
	$(BENCH_BIN)/kith-bench ingest
	$(BENCH_BIN)/kith-bench ingest --history 100000 --senders 8 --reorder 0.1
	$(BENCH_BIN)/kith-bench reconcile --items 100000 --diff 100
	$(BENCH_BIN)/kith-bench reconcile --items 100000 --diff 100 --store
	$(BENCH_BIN)/kith-bench event --version 1
	$(BENCH_BIN)/kith-bench event --version 2
	$(BENCH_BIN)/kith-bench rekey --members 128 --version 1
	$(BENCH_BIN)/kith-bench rekey --members 128 --version 2
	$(BENCH_BIN)/kith-bench link
	$(BENCH_BIN)/kith-bench link --no-worker
	$(BENCH_BIN)/kith-bench link --frame 1024
	$(BENCH_BIN)/kith-bench mesh --nodes 10 --posts 1000 --interval-ms 5
	$(BENCH_BIN)/kith-bench mesh --nodes 30 --posts 1000 --interval-ms 20
	bench/history.sh $(BENCH_BIN)/kith 4500 4000
	@if [ -x $(BENCH_BIN)/kith-sim ]; then \
	  $(BENCH_BIN)/kith-sim --nodes 1000 --messages 50 --loss 0.01 \
	    --crash 0.2 --seed 1; \
	  $(BENCH_BIN)/kith-sim --nodes 10000 --messages 20 --crash 0.5 \
	    --seed 1; fi
	bash bench/node.sh $(BENCH_BIN) 100000
	bash bench/partition.sh $(BENCH_BIN) 10000 1000

bench-full: bench-build
	$(BENCH_BIN)/kith-bench ingest --history 1000000 --senders 8 --reorder 0.1
	bash bench/node.sh $(BENCH_BIN) 1000000
	bash bench/partition.sh $(BENCH_BIN) 100000 10000

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
	clang-format -i core/*.[ch] net/*.[ch] cli/*.[ch] bench/*.[ch] \
	  sim/*.[ch] tests/*/*.c

check-format:
	clang-format --dry-run -Werror core/*.[ch] net/*.[ch] cli/*.[ch] \
	  tests/*/*.[ch] bench/*.[ch] sim/*.[ch]

clean:
	rm -rf $(BUILD) $(BUILD_BENCH) build-asan $(FUZZ_BUILD)
