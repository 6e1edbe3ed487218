"""Structured JSON logs through Powertools Logger, applied to the extension's own loggers."""

from __future__ import annotations

import logging

from handler_lib.config import Config


def setup_logging(config: Config) -> None:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    level = "DEBUG" if config.debug else "INFO"
    source = Logger(service="defer-runner", level=level)
    logging.getLogger("defer_runner").propagate = False
    copy_config_to_registered_loggers(source_logger=source, include={"defer_runner"}, log_level=level)
