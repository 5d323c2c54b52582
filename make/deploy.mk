# Deploy targets (included by the top-level Makefile). The logic lives in `python -m floe.deploy`
# (floe/deploy/); these targets only chain it with synth and docker build.
# Exit codes of every floe.deploy command: 0 success, 1 failure, 2 timeout, 130 interrupted. Through make,
# any failure exits 2 (make's own code) and make prints the tool's: `make: *** [verify] Error 1`
# (docs/troubleshooting.md, "Exit codes"). Every cluster command first checks kubectl (docker for the
# image), the context and the API server (floe.deploy.preflight.ground) before doing any work.

PYTHON ?= .venv/bin/python
FLOE_DEPLOY ?= $(PYTHON) -m floe.deploy
DIST ?= dist
SYNTH ?= $(PYTHON) main.py --quiet
DOCKERFILE ?= Dockerfile
# Seconds each phase may take to become Ready (first image pulls are the slow part).
PHASE_TIMEOUT ?= 600
# Seconds deploy-local-full's data phase may take: seed run, first generate_and_build run, Cube's rollup.
DATA_TIMEOUT ?= 900
# Extra flags for deploy, e.g. DEPLOY_FLAGS="--allow-context my-kind"
DEPLOY_FLAGS ?=
# Extra flags for verify, e.g. VERIFY_FLAGS="--trigger --timings --timeout 900"
VERIFY_FLAGS ?=
# Extra flags for load-image (the step of `make image` that puts the image into kind/k3d/minikube),
# e.g. LOAD_IMAGE_FLAGS="--dry-run" or "--allow-context my-lab"
LOAD_IMAGE_FLAGS ?=
INFRA_PHASES ?= infrastructure observability

.PHONY: deploy-synth image load-image deploy-local-infra deploy-local-full undeploy-local port-forward status seed generate preflight verify cube-token

deploy-synth: ## synthesize dist/ (the deploy targets read it)
	$(SYNTH)

DOCKER ?= docker

# load-image --dry-run first: no docker or kubectl, no context, a cluster that does not answer, a refused
# context or Rancher Desktop's containerd engine stops before the build.
# The tag is a digest of the build context (floe/image_tag.py): an image of that tag holds exactly this
# code, so when docker already has it nothing is built (and dist/ names the same tag as before).
define build_image
	$(FLOE_DEPLOY) load-image --dist $(DIST) --dry-run $(LOAD_IMAGE_FLAGS)
	tag="$$($(FLOE_DEPLOY) image-name --dist $(DIST))" && if $(DOCKER) image inspect "$$tag" >/dev/null 2>&1; then echo "image $$tag is up to date (its tag is the digest of its build context): nothing to build"; else $(DOCKER) build -t "$$tag" -f $(DOCKERFILE) .; fi
	$(FLOE_DEPLOY) load-image --dist $(DIST) $(LOAD_IMAGE_FLAGS)
endef

image: deploy-synth ## build the project image (tag = digest of its build context) and make it available to the cluster (kind/k3d/minikube: loaded)
	$(build_image)

load-image: deploy-synth ## only the loading step of `make image` (the image must be built)
	$(FLOE_DEPLOY) load-image --dist $(DIST) $(LOAD_IMAGE_FLAGS)

preflight: deploy-synth ## only the checks: context, reachability, image, capacity
	$(FLOE_DEPLOY) preflight --dist $(DIST) $(DEPLOY_FLAGS)

deploy-local-infra: deploy-synth ## PostgreSQL, MinIO, Polaris, Jaeger, Marquez; wait until Ready
	$(FLOE_DEPLOY) deploy --dist $(DIST) $(foreach p,$(INFRA_PHASES),--phase $(p)) --timeout $(PHASE_TIMEOUT) $(DEPLOY_FLAGS)

# The preflight (tools, context, reachability, capacity) runs before the image is built, not after.
deploy-local-full: deploy-synth ## preflight, image, every layer phase by phase, then waits for the data (seed, first build, Cube); prints the access table
	$(FLOE_DEPLOY) preflight --dist $(DIST) --before-build $(DEPLOY_FLAGS)
	$(build_image)
	$(FLOE_DEPLOY) deploy --dist $(DIST) --timeout $(PHASE_TIMEOUT) --data-timeout $(DATA_TIMEOUT) $(DEPLOY_FLAGS)

undeploy-local: ## remove everything deploy created, namespace included (safe to repeat)
	$(FLOE_DEPLOY) undeploy --dist $(DIST)

port-forward: ## forward every UI/API to localhost; Ctrl-C stops them
	$(FLOE_DEPLOY) port-forward --dist $(DIST)

status: ## pods, jobs, last Dagster runs, raw-table row counts
	$(FLOE_DEPLOY) status --dist $(DIST)

seed: ## run the seed job now (Dagster GraphQL)
	$(FLOE_DEPLOY) seed --dist $(DIST)

generate: ## run one generation (new orders + dbt build) now
	$(FLOE_DEPLOY) generate --dist $(DIST)

cube-token: ## print a Cube API token signed with the cluster's CUBEJS_API_SECRET (`make -s cube-token`: the token alone)
	@$(FLOE_DEPLOY) cube-token --dist $(DIST)

verify: ## run the verification Job in the deployed stack; one report table (VERIFY_FLAGS="--trigger --timings --timeout 900")
	$(FLOE_DEPLOY) verify --dist $(DIST) $(VERIFY_FLAGS)
