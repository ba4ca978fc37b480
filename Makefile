# The one entry point. Every target runs `setup` first, which brings a fresh
# Debian 12 machine with rustup to what the build needs (idempotently).

SHELL := /bin/bash
ROOT := $(abspath .)
WASI_SDK := $(ROOT)/target/wasi-sdk
GUEST_OUT := $(ROOT)/target/guest
GUEST_TARGET := wasm32-wasip2
GUEST_WASM := $(ROOT)/guest/target/$(GUEST_TARGET)/release
APT_PACKAGES := clang-14 lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32 patch
CARGO ?= cargo
QJS_SYS := rquickjs-sys-0.12.2
QJS_SYS_SHA256 := a13ac243b86a74120814ef7e9e30ad5a2c1199b7b9963b1cf7c84e4cdc1cad99
QJS_SYS_DIR := $(ROOT)/target/patched/$(QJS_SYS)
# Applied in this order (docs/building.md says what each is for).
QJS_SYS_PATCHES := $(ROOT)/guest/patches/$(QJS_SYS)-stack-check.patch $(ROOT)/guest/patches/$(QJS_SYS)-plain-shapes.patch \
	$(ROOT)/guest/patches/$(QJS_SYS)-outside-buffers.patch
export WASI_SDK

.PHONY: setup guest precompile precompile-tool build run test client-tests outside-test test-tools dist image typescript lint fuzz bench bench-tools bench-serve bench-quick bench-codec fmt clean

setup: $(WASI_SDK)/.ready $(QJS_SYS_DIR)/.patched
	@rustup target list --installed | grep -qx $(GUEST_TARGET) || { \
	  echo "== toolchain target: $(GUEST_TARGET)"; rustup target add $(GUEST_TARGET); }

# rquickjs-sys downloads wasi-sdk unless WASI_SDK names a layout of it; Debian's
# packages give the same pieces (docs/building.md).
$(WASI_SDK)/.ready:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "== Debian packages:" $$missing; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@echo "== WASI SDK layout from Debian's packages: $(WASI_SDK)"
	mkdir -p $(WASI_SDK)/bin $(WASI_SDK)/share/wasi-sysroot/lib
	ln -sfn /usr/bin/clang-14 $(WASI_SDK)/bin/clang
	ln -sfn /usr/bin/llvm-ar-14 $(WASI_SDK)/bin/ar
	ln -sfn /usr/include/wasm32-wasi $(WASI_SDK)/share/wasi-sysroot/include
	ln -sfn /usr/lib/wasm32-wasi $(WASI_SDK)/share/wasi-sysroot/lib/wasm32-wasi
	touch $@

# rquickjs-sys with QuickJS's stack check restored for WASI and plain shapes
# for the codec (docs/building.md): cargo fetches the exact crate
# (guest/patches/fetch, checked against the registry's checksum), the pinned
# checksum is checked again, and our patches applied; guest/Cargo.toml
# points [patch.crates-io] here.
$(QJS_SYS_DIR)/.patched: $(QJS_SYS_PATCHES) | $(WASI_SDK)/.ready
	@echo "== patched QuickJS: $(QJS_SYS) with $(notdir $(QJS_SYS_PATCHES))"
	rm -rf $(QJS_SYS_DIR) && mkdir -p $(dir $(QJS_SYS_DIR))
	$(CARGO) fetch --manifest-path guest/patches/fetch/Cargo.toml
	crate=$$(ls $${CARGO_HOME:-$$HOME/.cargo}/registry/cache/*/$(QJS_SYS).crate | head -1); \
	echo "$(QJS_SYS_SHA256)  $$crate" | sha256sum -c --quiet && \
	tar -xzf $$crate -C $(dir $(QJS_SYS_DIR))
	cd $(QJS_SYS_DIR) && for p in $(QJS_SYS_PATCHES); do patch -p1 --quiet < $$p || exit 1; done
	@# Its build script does not watch the C sources: rebuild it for a new patch.
	-cd guest && $(CARGO) clean --quiet --release --target $(GUEST_TARGET) -p rquickjs-sys
	touch $@

guest: setup
	@echo "== guest: the QuickJS components, for $(GUEST_TARGET)"
	cd guest && $(CARGO) build --release --target $(GUEST_TARGET)
	mkdir -p $(GUEST_OUT)
	cp $(GUEST_WASM)/miniworker_worker.wasm $(GUEST_WASM)/miniworker_main.wasm $(GUEST_OUT)/

# Snapshots each component after its `initialize` export (wasmtime-wizer) and
# compiles the snapshot with the host's engine configuration for a baseline
# CPU (MINIWORKER_NATIVE=1: this machine's), so the binary embeds a ready
# JavaScript context as machine code. The precompile tool does not depend on
# the host library, so the host is compiled once, with the snapshots. Every
# cargo invocation selects the whole workspace (and builds only the targets
# it names), so features unify the same way each time and Wasmtime is
# compiled once for build and test alike.
precompile:
	@# The guest and the snapshot tool do not need each other: side by side
	@# (the tool needs nothing of `setup`, so it compiles while the packages
	@# install).
	@$(MAKE) --no-print-directory -j2 guest precompile-tool
	@echo "== snapshot and precompile the components"
	./target/release/miniworker-precompile $(GUEST_OUT)/miniworker_worker.wasm $(GUEST_OUT)/miniworker_main.wasm

precompile-tool:
	@echo "== snapshot tool (wasmtime, wizer)"
	$(CARGO) build --release --workspace --bin miniworker-precompile

# Only what `run` needs; `make test` builds the rest of the workspace.
build: precompile
	@echo "== host: the miniworker binary"
	$(CARGO) build --release --workspace --bin miniworker
	@echo "built target/release/miniworker"

run: build
	./target/release/miniworker run examples/hello

test: precompile typescript test-tools
	@echo "== tests: every crate of the workspace"
	$(CARGO) test --release --workspace
	@$(MAKE) --no-print-directory client-tests

# A crate outside the workspace (tests/outside) that depends on the library
# by path, as the README says, built with this repository's lock file and
# target directory, and run. Its own dependency graph unifies features
# differently, so Wasmtime compiles again (about 4 minutes on 2 cores): CI
# runs it (.ci/run), make test does not.
outside-test:
	@echo "== the library from another Cargo project (tests/outside)"
	cp Cargo.lock tests/outside/Cargo.lock
	CARGO_TARGET_DIR=$(ROOT)/target $(CARGO) run --release --manifest-path tests/outside/Cargo.toml -- $(ROOT)/examples/hello

# The client packages' own tests, against the binary the workspace tests built.
client-tests:
	@echo "== client packages: clients/python (pytest), clients/node (node --test)"
	@if [ -x target/venv/bin/python ]; then \
	  target/venv/bin/pip install -q './clients/python[test]' && \
	  MINIWORKER=$(ROOT)/target/release/miniworker target/venv/bin/python -m pytest -q clients/python/tests; \
	else echo "SKIPPED clients/python: no target/venv (make test-tools makes it)"; fi
	@if command -v npm >/dev/null; then \
	  cd clients/node && npm install --no-audit --no-fund --silent && \
	  MINIWORKER=$(ROOT)/target/release/miniworker node --test test/; \
	else echo "SKIPPED clients/node: npm is missing"; fi

# Real peers of the server tests: HAProxy in front of two servers, podman
# for the image, Chromium for the playground (Debian's packages), and
# kubernetes-validate for the manifests (PyPI, in target/venv, where the
# Python client's tests run too). A test whose tool is missing says it was
# skipped.
TEST_PACKAGES := haproxy podman python3-venv chromium
test-tools:
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "== Debian packages for the tests:" $$missing; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
	    || echo "(could not install$$missing: the tests that need it will say they were skipped)"; \
	fi
	@if [ ! -x target/venv/bin/kubernetes-validate ]; then \
	  echo "== Python tools: kubernetes-validate in target/venv"; \
	  { python3 -m venv target/venv && target/venv/bin/pip install -q kubernetes-validate==1.37.0; } \
	    || echo "(could not install it: the manifest tests will say they were skipped)"; \
	fi

# The release archive and its checksum, in dist/ (deploy/dist.sh).
dist: build
	@echo "== release archive"
	deploy/dist.sh target/release/miniworker $(GUEST_OUT) dist

# The server's container image (deploy/Containerfile): the binary and the
# libraries it links on an empty base, from local files; podman builds it.
IMAGE ?= localhost/miniworker:latest
image: build
	deploy/image/rootfs.sh target/release/miniworker target/image/rootfs
	cp deploy/Containerfile target/image/Containerfile
	podman build -t $(IMAGE) -f target/image/Containerfile target/image

# TypeScript's compiler (the test of types/miniworker.d.ts), jco (the test
# that hosts the worker component in Node.js) and playwright-core (drives
# Debian's Chromium through the playground; it downloads no browser), under
# target/npm;
# without npm those tests say they were skipped.
NPM_TOOLS := typescript@5 @bytecodealliance/jco@1.35.0 @bytecodealliance/preview2-shim playwright-core@1
typescript:
	@if command -v npm >/dev/null && { [ ! -x target/npm/node_modules/.bin/tsc ] || [ ! -x target/npm/node_modules/.bin/jco ] || [ ! -d target/npm/node_modules/playwright-core ]; }; then \
	  mkdir -p target/npm && npm install --prefix target/npm --no-audit --no-fund --silent $(NPM_TOOLS) \
	    || echo "(npm tools not installed: the types and jco tests will be skipped)"; \
	fi

lint: guest
	$(CARGO) fmt --all --check
	cd guest && $(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	cd guest && $(CARGO) clippy --release --target $(GUEST_TARGET) --all-targets -- -D warnings

# The benchmark (bench/README.md): miniworker beside Node.js worker_threads,
# native QuickJS-ng and Debian-source qjs, in one run; writes
# bench/results/latest.json. Debian's qjs is built once from its source
# package with bench/qjs/build.sh.
QJS_DIR := $(ROOT)/target/bench/qjs
QJS_SCRIPT := $(ROOT)/bench/qjs/build.sh
bench: bench-tools
	cd guest && $(CARGO) build --release --target $(GUEST_TARGET) --example run_script
	@if [ ! -x $(QJS_DIR)/src/qjs ] && [ -f $(QJS_SCRIPT) ]; then \
	  for p in dpkg-dev xz-utils; do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p >/dev/null); done; \
	  bash $(QJS_SCRIPT) $(QJS_DIR) >/dev/null || echo "(building Debian's qjs failed: its column stays empty)"; \
	fi
	./target/release/miniworker-bench
	./target/release/serve_load

# The server under load alone: 1,000 sessions over two hosts against 1,000
# worker processes (bench/src/bin/serve_load.rs; SESSIONS=, TRIPS= to change).
SESSIONS ?= 1000
TRIPS ?= 100
bench-serve: bench-tools
	./target/release/serve_load --sessions $(SESSIONS) --trips $(TRIPS)

# The benchmark programs, beside the binary they measure.
bench-tools: build
	$(CARGO) build --release --workspace --bins

# The same in under a minute, with fewer samples (not for the docs).
bench-quick: bench-tools
	cd guest && $(CARGO) build --release --target $(GUEST_TARGET) --example run_script
	./target/release/miniworker-bench --quick --out $(ROOT)/target/bench/quick.json

# The message codec's encode+decode time inside the guest (a WASI command
# built from the guest library, run under the production engine config).
bench-codec: setup
	cd guest && $(CARGO) build --release --target $(GUEST_TARGET) --example codec_timing
	$(CARGO) run --release --quiet -p miniworker-bench --bin guest_command -- \
	  $(GUEST_WASM)/examples/codec_timing.wasm

# Coverage-guided fuzzing (nightly, kept out of CI): each target runs
# FUZZ_SECONDS; a crash leaves its input under fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= decode app_json resolve
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  $(CARGO) +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
	    | grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done|==|SUMMARY)' \
	    | sed "s/^/[$$t] /"; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

fmt:
	$(CARGO) fmt --all
	cd guest && $(CARGO) fmt --all

clean:
	$(CARGO) clean
	cd guest && $(CARGO) clean
