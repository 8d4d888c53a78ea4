.PHONY: run test lint format bench vendor clean

run:  ## venv, dependencies, a broker, the app
	scripts/run.sh $(ARGS)

test:  ## the same set-up, then ruff and the whole suite
	scripts/test.sh $(ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:
	scripts/setup.sh dev && .venv/bin/python -m bench.run_all

vendor:  ## refresh static/vendor from the pinned npm packages
	scripts/vendor.sh

clean:
	rm -rf .run .pytest_cache .ruff_cache
