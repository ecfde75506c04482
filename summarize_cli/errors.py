"""Domain errors: raised by the library, turned into `Error: ...` lines by the CLI."""


class SummarizeError(Exception):
    """A known failure with a message fit for the user."""

    exit_code = 1


class ModelLoadError(SummarizeError):
    """The model or its tokenizer cannot be found, fetched or loaded."""


class SettingsError(SummarizeError):
    """Generation settings that cannot work together."""

    exit_code = 2


class InputError(SummarizeError):
    """One input cannot be read; the run goes on without it and counts it as failed."""

    skipped = False


class SkippedInput(InputError):
    """One input holds nothing to summarise (empty, binary, undecodable); counted as skipped."""

    skipped = True


class OutputError(SummarizeError):
    """An output file or folder cannot be written."""
