"""Every exception sinecheck raises.  Usage errors are `ConfigError`s (a ValueError): the message names the field
or spec, the bad value and what is allowed; the command line turns them into one line and exit status 2."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field, the value and what is allowed."""


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value has the wrong type (still a ConfigError, and a TypeError for callers)."""


class SpecError(ConfigError):
    """A model or data spec cannot be used; the message names the spec and the reason."""


class EngineUnsupported(ConfigError):
    """The engine cannot honour this config or environment (it never silently trains something else)."""


class WorkerDied(RuntimeError):
    """The worker process is gone or did not answer in time."""


class BaselineError(ConfigError):
    """A baseline file is missing, corrupt, foreign or of an unknown schema; the message names the file and
    the command that regenerates it."""
