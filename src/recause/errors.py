"""Errors a user can act on: each carries a one-line message that names the problem."""


class RecauseError(Exception):
    """Base class for problems with the user's input, shown as one line without a traceback."""


class ParamsError(RecauseError):
    """A parameter is unknown, mistyped or out of range."""


class InputDataError(RecauseError):
    """An input file is missing, unreadable or does not have the expected shape."""


class ValidationFailed(RecauseError):
    """The data validation gate rejected a table."""
