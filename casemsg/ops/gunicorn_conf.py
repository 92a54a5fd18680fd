"""Gunicorn settings for `casemsg serve` (`--config python:casemsg.ops.gunicorn_conf`): the access log on
(standard output; JSON lines with CASEMSG_LOG_FORMAT=json), and a worker that exits takes its metrics
files out of the multiprocess directory's live gauges."""

from __future__ import annotations

import os
from typing import Any

accesslog = "-"
errorlog = "-"

_json = os.environ.get("CASEMSG_LOG_FORMAT") == "json"
# Gunicorn's own loggers, configured here so both go through casemsg's filter: access lines never show a
# gateway's secret webhook key or a whole phone number, whatever the format.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask": {"()": "casemsg.core.logs.MaskNumbersFilter"}},
    "formatters": {
        "json": {"()": "casemsg.core.logs.JsonFormatter"},
        "access": {"format": "%(message)s"},
        "error": {"format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"},
    },
    "handlers": {
        "out": {
            "class": "logging.StreamHandler",
            "formatter": "json" if _json else "access",
            "filters": ["mask"],
            "stream": "ext://sys.stdout",
        },
        "err": {
            "class": "logging.StreamHandler",
            "formatter": "json" if _json else "error",
            "filters": ["mask"],
            "stream": "ext://sys.stderr",
        },
    },
    "root": {"handlers": ["err"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {
            "handlers": ["err"],
            "level": os.environ.get("CASEMSG_LOG_LEVEL", "WARNING"),
            "propagate": False,
        },
        "gunicorn.access": {"handlers": ["out"], "level": "INFO", "propagate": False},
    },
}


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
