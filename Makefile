# The two entry points (see README): `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
NPM_STAMP := node_modules/.zerofs-installed

.PHONY: run test test-deps install bench lint typecheck clean images

# npm ci runs the `node` package's preinstall, which brings the pinned Node 24 that every
# npm script runs on (never use --ignore-scripts or --omit=dev here: that drops back to the
# system Node).
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NPM_STAMP)

# The server on the embedded default: a local directory (./data unless ZEROFS_DATA_DIR is set),
# NFS on 127.0.0.1:2049 (ZEROFS_NFS_PORT), metrics on :9090 (see scripts/run-server.sh).
run: install
	scripts/run-server.sh

# Debian packages the tests use: libnfs-utils (the independent NFS client of the protocol tests).
test-deps:
	scripts/tools/ensure-apt.sh nfs-cp libnfs-utils

# Unit, engine (local + versitygw), NFS protocol (libnfs), operator (kube-apiserver) suites,
# the kernel NFS client suite in a qemu VM (e2e/vm/README.md), then the real node: images,
# kubelet and containerd in a qemu VM, the user's whole path (e2e/node/README.md). The node's
# tools and images build in the background (lowest priority) while the other suites run.
test: install test-deps
	scripts/tools/prebuild-node.sh --background
	npm test
	npm run test:e2e
	npm run test:node

# The server and operator images (operator/docker/*.Dockerfile) with podman, on a local Node base
# image (no registry needed), exported to dist/images/*.tar for `ctr images import` / `podman load`.
images: install
	scripts/images.sh

bench: install
	npm run bench:engine

lint: install
	npm run lint

typecheck: install
	npm run typecheck

clean:
	rm -rf node_modules dist
