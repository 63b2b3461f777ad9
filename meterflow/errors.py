"""The small vocabulary of errors meterflow raises on purpose.

Every message names the bad value and says what to do about it; the CLI prints it as one line
and exits with the error's ``exit_code`` (2: fix something and try again).
"""


class MeterflowError(Exception):
    """Base of every error meterflow raises on purpose."""

    exit_code = 2


class SpecError(MeterflowError):
    """A MeterPipeline manifest is missing, unreadable or invalid."""


class StackError(MeterflowError):
    """The embedded stack (broker, jars) cannot start, stop or be reached."""


class SetupError(MeterflowError):
    """Something `make setup` installs is missing."""
