.PHONY: run test lint format bench vendor clean

run:  ## venv, dependencies, a broker, the app
	scripts/run.sh $(ARGS)

test:  ## the same set-up, then ruff and the whole suite
	scripts/test.sh $(ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:  ## the live-path, RPC and burst benchmarks (the 30-minute soak: .venv/bin/python -m bench.soak)
	scripts/setup.sh dev && .venv/bin/python -m bench.live_bench && .venv/bin/python bench/rpc_bench.py && .venv/bin/python -m bench.burst_bench

vendor:  ## refresh static/vendor from the pinned npm packages
	scripts/vendor.sh

clean:
	rm -rf .run .pytest_cache .ruff_cache
