# Every target sets up .venv first (Python 3.10 + locked dependencies) when
# needed, so `make run` and `make test` work on a fresh clone.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LINT_IMPORTS := $(VENV)/bin/lint-imports --no-logo --no-cache
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run test test-fast bench bench-scale lock clean compile image rehearse report schema serve

help:
	@echo "make run    run the whole pipeline locally on data/ (sets up .venv first)"
	@echo "make test   run the test suite (sets up .venv first)"
	@echo "make test-fast  the import rules and the unit tests, without whole pipeline runs (under 2 minutes)"
	@echo "make report build the HTML report of the newest local run"
	@echo "make schema copy the newest inferred schema to schema/<PIPELINE_NAME>/schema.pbtxt for review"
	@echo "make monitor INPUT=rows.csv  check served rows (CSV or bq://project.dataset.table) for skew and drift; exit 1 when any"
	@echo "make serve  serve the newest pushed model on 127.0.0.1:SERVE_PORT (8501), TensorFlow Serving's REST API"
	@echo "make setup  create .venv with Python 3.10 and the locked dependencies (and chromium, where apt-get may)"
	@echo "make compile  compile for Vertex AI and Kubeflow Pipelines (needs GOOGLE_CLOUD_PROJECT)"
	@echo "make rehearse run the compiled Kubeflow spec locally, task by task, as Vertex AI and Kubeflow Pipelines would (twice each)"
	@echo "make image    build the pipeline image with Cloud Build, tagged with the commit; record its digest"
	@echo "make bench  time this pipeline against the official TFX taxi template and a floor script"
	@echo "make bench-scale  both at 100k and 1M rows: time and peak memory per component"
	@echo "make lock   re-resolve python_requirements.txt into requirements.lock"
	@echo "make clean  delete local pipeline outputs (tfx_output/)"
	@echo "make infra-plan  print what make infra would create on Google Cloud"
	@echo "make infra  create the Google Cloud infrastructure (docs/cloud_setup.md)"
	@echo "make serving-status  which model version serves on Vertex AI, since when, made by which run"
	@echo "make rollback  serve the previous version on Vertex AI again (TO=<version> for another one)"

setup: $(STAMP)

$(STAMP): python_requirements.txt requirements.lock scripts/setup_venv.sh scripts/find_python.sh scripts/tfx_entry_point.py
	@scripts/setup_venv.sh
	@scripts/install_chromium.sh

run: setup
	$(PY) local_runner.py

# Chromium (for the report's browser test) is installed where apt-get may;
# the import rules between the packages (.importlinter) are checked first.
test: setup
	@scripts/install_chromium.sh
	$(LINT_IMPORTS)
	$(PY) -m pytest

test-fast: setup
	$(LINT_IMPORTS)
	$(PY) -m pytest -m "not slow"

report: setup
	$(PY) -m local.report

schema: setup
	$(PY) -m local.schema

# Fails when a feature of the served rows is over its skew or drift threshold,
# so a scheduler can alert on it: `python -m local.monitor` exits 1 then, 2
# when the rows cannot be checked; make reports either as its own status 2
# (docs/continuous_training.md).
.PHONY: monitor
monitor: setup
	@test -n "$(INPUT)" || { echo "make monitor: set INPUT, e.g. make monitor INPUT=rows.csv or INPUT=bq://PROJECT.DATASET.TABLE" >&2; exit 2; }
	$(PY) -m local.monitor --input "$(INPUT)"
serve: setup
	$(PY) -m local.serving.serve

compile: setup
	@test -n "$$GOOGLE_CLOUD_PROJECT" || { echo "make compile: set GOOGLE_CLOUD_PROJECT (e.g. GOOGLE_CLOUD_PROJECT=my-project make compile)" >&2; exit 2; }
	$(PY) kubeflow_runner.py --target=all

# Offline: compiles with a stand-in project unless GOOGLE_CLOUD_PROJECT is set.
rehearse: setup
	$(PY) -m rehearsal

image: setup
	@IMAGE="$$($(PY) -m deploy.pipeline_image)" && \
	  PROJECT="$${IMAGE#*docker.pkg.dev/}" && PROJECT="$${PROJECT%%/*}" && \
	  echo "Building $$IMAGE with Cloud Build in project $$PROJECT" && \
	  gcloud builds submit --project="$$PROJECT" --tag="$$IMAGE" . && \
	  $(PY) -m deploy.pipeline_image --record-digest

bench: setup
	$(PY) bench/compare_with_template.py

bench-scale: setup
	$(PY) bench/scale.py

lock:
	scripts/lock.sh

clean:
	rm -rf tfx_output

.PHONY: infra infra-plan

infra-plan: setup
	$(PY) -m pipeline.gcp_infrastructure --dry-run

infra: setup
	$(PY) -m pipeline.gcp_infrastructure

# Serving on Vertex AI (docs/serving.md).
.PHONY: serving-status rollback

serving-status: setup
	$(PY) -m deploy.serving status

rollback: setup
	$(PY) -m deploy.serving rollback $(if $(TO),--to $(TO))
