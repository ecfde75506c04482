"""Domain errors: raised by the library, turned into `Error: ...` lines by the CLI."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGINT, EXIT_SIGPIPE, EXIT_SIGTERM = 130, 141, 143


class SummarizeError(Exception):
    """A known failure with a message fit for the user."""

    exit_code = EXIT_FAILED


class ModelLoadError(SummarizeError):
    """The model or its tokenizer cannot be found, fetched or loaded."""


class ModelUnavailable(ModelLoadError):
    """The model is not on this machine and cannot be downloaded now (offline, or the Hub unreachable): the
    one failure `--method auto` answers with the extractive method. `reason` says what is missing, `how`
    how to get the model."""

    def __init__(self, reason: str, how: str):
        super().__init__(f"{reason}: {how}")
        self.reason = reason
        self.how = how


class SettingsError(SummarizeError):
    """Generation settings that cannot work together."""

    exit_code = EXIT_USAGE


class UsageError(SettingsError):
    """An option's value, or a combination of options, that cannot work: raised by the spec it concerns
    when the spec is made, before any model loads. `option` names it as the user typed it."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option
        self.message = message


class InputError(SummarizeError):
    """One input cannot be read; the run goes on without it and counts it as failed."""

    skipped = False


class SkippedInput(InputError):
    """One input holds nothing to summarise (empty, binary, undecodable); counted as skipped."""

    skipped = True


class OutputError(SummarizeError):
    """An output file or folder cannot be written."""


PARQUET_EXTRA = "pip install 'summarize-cli[parquet]'"


class MissingDependency(SummarizeError):
    """An optional library a feature needs is not installed: one line naming the install command."""


def need_pyarrow(what: str) -> None:
    """Fail before anything is written when `what` (writing or reading Parquet) cannot work."""
    try:
        import pyarrow.parquet  # noqa: F401 - only whether it imports
    except ImportError:
        raise MissingDependency(f"{what} needs pyarrow: {PARQUET_EXTRA}") from None


def stdout_failed(exc: Exception) -> OutputError:
    """Writing to stdout failed (a full device, a vanished mount): said the same way by every command."""
    return OutputError(f"cannot write to standard output: {getattr(exc, 'strerror', None) or exc}")


def signal_exit(exc: BaseException) -> int:
    """130 for Ctrl-C (KeyboardInterrupt), 143 for SIGTERM (Terminated)."""
    return EXIT_SIGINT if isinstance(exc, KeyboardInterrupt) else EXIT_SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl-C, with exit status 143.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` (a failed conversion, a broken
    file) can mistake a signal for a failure of its own.
    """
