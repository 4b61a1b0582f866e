"""One exception hierarchy for the whole tool.

Every class carries the exit code the command line maps it to (datacompy's convention:
0 clean, 1 findings, 2 usage/configuration/connection error). ``main.py`` catches
``Opus2IopsError`` in one place and prints ``str(error)`` as a single line: messages must
say what to fix and must never contain intelligence text or a password.
"""

from __future__ import annotations


class Opus2IopsError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class UsageError(Opus2IopsError):
    """Bad options or arguments (e.g. an unknown run id, a malformed URL)."""


class ConfigError(Opus2IopsError):
    """Configuration is wrong: a code table is malformed, a driver is missing."""


class StoreUnavailable(Opus2IopsError):
    """A store cannot be reached or was lost mid-run (connection refused, terminated)."""


class ForeignSchemaError(Opus2IopsError):
    """The store holds tables that are not what this tool expects."""


class OutputError(Opus2IopsError):
    """An output folder or file cannot be written."""


class RunInProgress(Opus2IopsError):
    """Another migration or rollback holds the target."""


class RunNotFound(UsageError):
    """The run id given does not exist in this target."""


class Findings(Opus2IopsError):
    """Not a failure of the tool: the work found something a person must look at.

    Raised (or returned as an exit code) for discrepancies above threshold, rejects above
    threshold and rollback conflicts.
    """

    exit_code = 1


class RollbackConflicts(Findings):
    """``rollback --execute`` refused because the dry run reports conflicts."""
