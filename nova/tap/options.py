"""Command-line options every nova twistd plugin shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.python import usage

from nova.config import NovaConfig, load_config


class NovaOptions(usage.Options):
    """C{--config} and the settings most often overridden on the command line."""

    optParameters = [
        ["config", "c", None, "the INI configuration file (default: etc/nova.conf if present)"],
        ["state-dir", None, None, "where state is kept (overrides the file and NOVA_STATE_DIR)"],
        ["host", None, None, "this host's name in the cloud"],
        ["ec2-port", None, None, "the EC2 API port", int],
        ["listen", None, None, "the address the APIs listen on"],
        ["rpc", None, None, "the message bus: local or amqp"],
    ]

    def postOptions(self) -> None:
        if self["rpc"] not in (None, "local", "amqp"):
            raise usage.UsageError("--rpc must be local or amqp")

    def config(self, environ: Any = None) -> NovaConfig:
        """@return: the configuration these options select."""
        path = self["config"]
        if path is None and os.path.exists(os.path.join("etc", "nova.conf")):
            path = os.path.join("etc", "nova.conf")
        return load_config(path, environ=environ, overrides={
            "state_dir": Path(self["state-dir"]) if self["state-dir"] else None,
            "host": self["host"],
            "api__ec2_port": self["ec2-port"],
            "api__listen": self["listen"],
            "rpc__transport": self["rpc"],
        })
