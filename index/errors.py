"""Errors the index raises for the user: each message is one line that says what to do."""


class UserFacingError(Exception):
    """Base for errors shown to the user verbatim (one line, actionable); the CLI exits non-zero."""


class IndexNotFound(UserFacingError):
    pass


class IndexIncompatible(UserFacingError):
    pass


class LoadError(UserFacingError):
    """A file could not be turned into text; the batch goes on without it."""


class IndexDamaged(UserFacingError):
    """A committed generation's files are not what the manifest recorded (truncated, edited, missing)."""
