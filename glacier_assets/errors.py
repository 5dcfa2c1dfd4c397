"""The error every step raises for one glacier's bad input or product."""


class GlacierError(RuntimeError):
    """A problem with one glacier's inputs or products; the message names the glacier."""
