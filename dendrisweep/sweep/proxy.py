"""`python -m dendrisweep.sweep.proxy STORAGE_URL`: Optuna's gRPC storage proxy in front of a study database.

For hundreds of workers on one database: agents connect with `--storage grpc://HOST:PORT` instead of
each holding database connections. Heartbeats, lost-trial recovery and the budget lock are
dendrisweep's own and work through it (sweep/optuna_adapter.py).

    python -m dendrisweep.sweep.proxy postgresql://user:pass@db-host/dendrisweep --host 0.0.0.0 --port 13000
"""
from __future__ import annotations

from collections.abc import Sequence

from dendrisweep.errors import ArgumentParser, cli_errors, positive


def main(argv: Sequence[str] | None = None) -> int:
    with cli_errors("python -m dendrisweep.sweep.proxy"):
        parser = ArgumentParser(prog="python -m dendrisweep.sweep.proxy", description=__doc__.splitlines()[0])
        parser.add_argument("storage", help="the study database: sqlite:///... or postgresql://...")
        parser.add_argument("--host", default="localhost", help="address to listen on (0.0.0.0: every interface)")
        parser.add_argument("--port", type=positive(int), default=13000)
        opts = parser.parse_args(argv)
        from optuna.storages import run_grpc_proxy_server

        from dendrisweep.sweep.storage import open_storage, redact

        storage = open_storage(opts.storage)
        print(f"gRPC storage proxy for {redact(opts.storage)}: agents use --storage grpc://{opts.host}:{opts.port}",
              flush=True)
        try:
            run_grpc_proxy_server(storage, host=opts.host, port=int(opts.port))
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
