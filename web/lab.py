"""Where a request finds the lab's services and the live hub (kept on the Flask app), and log redaction."""

from __future__ import annotations

import logging

from flask import Flask, current_app

from lab.container import Lab
from rabbit.urls import scrub
from web.live import LiveHub

EXTENSION_KEY = "rabbitlens"
HUB_KEY = "rabbitlens.hub"


def current_lab() -> Lab:
    return current_app.extensions[EXTENSION_KEY]


def current_hub() -> LiveHub:
    return current_app.extensions[HUB_KEY]


class RedactingFilter(logging.Filter):
    """Scrubs broker passwords out of every log record that passes a handler."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(app: Flask, secrets: list[str]) -> None:
    flt = RedactingFilter(secrets)
    for logger in (logging.getLogger(), app.logger):
        for handler in logger.handlers:
            handler.addFilter(flt)
