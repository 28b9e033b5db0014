"""Logging honours BFEST_LOG_LEVEL / BFEST_LOG_JSON even for loggers made before it is configured
(a service makes its logger when it is constructed, and configures logging when it starts)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
from services.common.logging import configure_logging, get_logger
log = get_logger("service", service="registration")
configure_logging("WARNING", json=True)
log.info("hidden")
log.bind(request_id="r1").info("hidden.too")
log.bind(request_id="r2").warning("command.refused", code="quota_exceeded")
"""


def test_a_logger_made_before_configuration_honours_level_and_format():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    assert [entry["event"] for entry in lines] == ["command.refused"]
    assert lines[0]["service"] == "registration" and lines[0]["request_id"] == "r2" and lines[0]["level"] == "warning"
