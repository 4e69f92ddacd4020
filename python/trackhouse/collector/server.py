"""`trackhouse serve`: uvicorn running the collector app, one spool writer per worker."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

from ..errors import ConfigError
from .config import ENV_RUNTIME, CollectorConfig, load_config, with_demo_key

# Requests handled at once per worker; beyond it uvicorn answers 503 at once, so a
# flood queues nowhere (each request holds at most one 500 KB body in memory).
DEFAULT_LIMIT_CONCURRENCY = 256


def serve(
    host: str = "127.0.0.1",
    port: int = 8088,
    workers: int = 1,
    spool_dir: str | os.PathLike[str] | None = None,
    write_keys: Iterable[str] = (),
    *,
    config_file: str | os.PathLike[str] | None = None,
    cors_origins: Iterable[str] = (),
    demo: bool = False,
    max_spool_bytes: int | None = None,
    public_url: str | None = None,
    node_modules: str | None = None,
    access_log: bool = True,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
    forwarded_allow_ips: str | None = None,
    log_level: str = "info",
) -> None:
    """Run the collector until SIGINT/SIGTERM (in-flight requests finish first).

    `write_keys` items are `SOURCE=sha256:<hex>` (or `SOURCE=<key>`, hashed here);
    they add to those of `config_file` / $TRACKHOUSE_COLLECTOR_CONFIG and
    $TRACKHOUSE_COLLECTOR_WRITE_KEYS. Behind a TLS proxy, set `forwarded_allow_ips`
    to the proxy's address so client addresses and https URLs are taken from its
    X-Forwarded-* headers.
    """
    import uvicorn

    config = load_config(
        config_file=config_file,
        write_keys=write_keys,
        spool_dir=spool_dir,
        cors_origins=cors_origins,
        demo=demo or None,
        max_spool_bytes=max_spool_bytes,
        public_url=public_url,
        node_modules=node_modules,
        access_log=access_log,
    )
    config = with_demo_key(config)
    check(config)
    from .app import spool_directory

    config = replace(config, spool_dir=str(spool_directory(config).resolve()))
    # Workers are separate processes: they read the resolved configuration (hashes only).
    os.environ[ENV_RUNTIME] = config.to_json()
    uvicorn.run(
        "trackhouse.collector.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # ours (AccessLog) leaves write keys and payloads out
        limit_concurrency=limit_concurrency,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=30,
        log_level=log_level,
    )


def check(config: CollectorConfig) -> None:
    if not config.write_keys:
        raise ConfigError(
            "no write keys configured, so every request would get 401; give one with "
            "--write-key web=sha256:<hex> (make the hash with "
            "`python -m trackhouse.collector hash-key KEY`), $TRACKHOUSE_COLLECTOR_WRITE_KEYS "
            "or [collector.write_keys] in a TOML file"
        )
    if config.demo:
        from .app import node_modules_dir

        if node_modules_dir(config) is None:
            raise ConfigError(
                "--demo needs @segment/analytics-next from npm: run "
                "`npm install --prefix tests/sdk` (or point --node-modules / "
                "$TRACKHOUSE_NODE_MODULES at a node_modules folder that has it)"
            )
