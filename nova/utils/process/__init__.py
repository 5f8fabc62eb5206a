"""
Host commands: the L{IProcessRunner} seam.

Managers build argv lists and run them through an injected runner:
L{ProcessRunner} in services, L{FakeProcessRunner} in their unit tests. No
shell is ever involved; identifiers that go into argv lists are checked with
L{nova.utils.validate} first.
"""

from nova.utils.process.fake import FakeProcessRunner, RecordedCall, Reply
from nova.utils.process.interface import (
    DEFAULT_TIMEOUT,
    CommandFailed,
    CommandNotFound,
    CommandTimedOut,
    IProcessRunner,
    OutputTooLarge,
    ProcessResult,
    describe,
)
from nova.utils.process.runner import ProcessRunner, find_executable

__all__ = [
    "DEFAULT_TIMEOUT",
    "CommandFailed",
    "CommandNotFound",
    "CommandTimedOut",
    "FakeProcessRunner",
    "IProcessRunner",
    "OutputTooLarge",
    "ProcessResult",
    "ProcessRunner",
    "RecordedCall",
    "Reply",
    "describe",
    "find_executable",
]
