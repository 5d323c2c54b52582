# Deploy targets (included by the top-level Makefile). The logic lives in `python -m floe.deploy`
# (floe/deploy/); these targets only chain it with synth and docker build.
# Exit codes of every floe.deploy command: 0 success, 1 failure, 2 timeout (docs/troubleshooting.md).

PYTHON ?= .venv/bin/python
FLOE_DEPLOY ?= $(PYTHON) -m floe.deploy
DIST ?= dist
SYNTH ?= $(PYTHON) main.py --quiet
DOCKERFILE ?= Dockerfile
# Seconds each phase may take to become Ready (first image pulls are the slow part).
PHASE_TIMEOUT ?= 600
# Extra flags for deploy, e.g. DEPLOY_FLAGS="--allow-context my-kind"
DEPLOY_FLAGS ?=
INFRA_PHASES ?= infrastructure observability

.PHONY: deploy-synth image deploy-local-infra deploy-local-full undeploy-local port-forward status seed generate preflight

deploy-synth: ## synthesize dist/ (the deploy targets read it)
	$(SYNTH)

image: deploy-synth ## build the project image; Docker Desktop's Kubernetes uses local images
	docker build -t "$$($(FLOE_DEPLOY) image-name --dist $(DIST))" -f $(DOCKERFILE) .

preflight: deploy-synth ## only the checks: context, reachability, image, capacity
	$(FLOE_DEPLOY) preflight --dist $(DIST) $(DEPLOY_FLAGS)

deploy-local-infra: deploy-synth ## PostgreSQL, MinIO, Polaris, Jaeger, Marquez; wait until Ready
	$(FLOE_DEPLOY) deploy --dist $(DIST) $(foreach p,$(INFRA_PHASES),--phase $(p)) --timeout $(PHASE_TIMEOUT) $(DEPLOY_FLAGS)

deploy-local-full: deploy-synth image ## image + every layer, phase by phase; prints the access table
	$(FLOE_DEPLOY) deploy --dist $(DIST) --timeout $(PHASE_TIMEOUT) $(DEPLOY_FLAGS)

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
