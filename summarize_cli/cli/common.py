"""What both commands share: the stderr console, the one error funnel, the progress display."""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import typer
from typer.core import TyperCommand, TyperGroup

from summarize_cli.errors import (
    EXIT_SIGPIPE,
    SettingsError,
    SummarizeError,
    Terminated,
    UsageError,
    signal_exit,
)


class LazyConsole:
    """The stderr Rich console, made on first use: Rich's import (tens of milliseconds) is paid by a run
    that shows a display or a spinner, never by one in a pipeline, a job or a -q run, whose messages are
    plain lines (see say)."""

    _console = None

    def get(self):
        if LazyConsole._console is None:
            from rich.console import Console

            hook_broken_pipe()
            LazyConsole._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return LazyConsole._console

    @property
    def made(self) -> bool:
        return LazyConsole._console is not None

    def __getattr__(self, name: str):
        return getattr(self.get(), name)


stderr = LazyConsole()


def silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so a later flush (the interpreter's last) stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _closed_pipe(console) -> None:
    """Rich's answer to a closed stdout, with the exit code every other closed pipe gets here (141, not
    Rich's 1): Typer prints --help through a Rich console of its own, so the hook is set on the class."""
    if console.quiet:
        return
    silence_stdout()
    raise SystemExit(EXIT_SIGPIPE)


def hook_broken_pipe() -> None:
    """Rich's consoles, Typer's own for --help and usage errors included, end a closed pipe with 141."""
    from rich.console import Console

    Console.on_broken_pipe = _closed_pipe


def print_result(text: str) -> None:
    """A command's result on stdout, flushed: a closed pipe ends quietly with 141 and a full device is
    one error line, as for summaries."""
    from summarize_cli.errors import stdout_failed

    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(EXIT_SIGPIPE) from None
    except OSError as exc:
        raise stdout_failed(exc) from None


def say(lines: list[str]) -> None:
    """Messages for the user, on stderr, never read as markup: through the Rich console once it is made
    (a live display then steps aside for them), else as plain lines."""
    if stderr.made:
        for line in lines:
            stderr.print(line, markup=False)
        return
    try:
        sys.stderr.write("".join(f"{line}\n" for line in lines))
        sys.stderr.flush()
    except BrokenPipeError:  # as Rich's console would end it
        silence_stdout()
        raise SystemExit(EXIT_SIGPIPE) from None


def stop_line(exc: BaseException) -> str:
    """What a stop by Ctrl-C (KeyboardInterrupt) or SIGTERM (Terminated) says when nothing was begun."""
    return "Interrupted." if isinstance(exc, KeyboardInterrupt) else "Terminated."


def handle_errors(command):
    """The one place that turns known failures into `Error: ...` on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        debug = os.environ.get("SUMMARIZE_DEBUG", "") not in ("", "0")
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except UsageError as exc:  # a spec refused an option: Click's usage line and exit 2, like its own checks
            raise typer.BadParameter(exc.message, param_hint=exc.option) from None
        except SummarizeError as exc:
            if debug:
                raise
            say([f"Error: {exc}"])
            raise typer.Exit(exc.exit_code) from None
        except (KeyboardInterrupt, Terminated) as exc:
            say([stop_line(exc)])
            raise typer.Exit(signal_exit(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence keeps tracebacks off the terminal
            if debug:
                raise
            say([f"Error: unexpected {type(exc).__name__}: {exc} (run with SUMMARIZE_DEBUG=1 for the traceback)"])
            raise typer.Exit(1) from None

    return wrapper


def show_progress(quiet: bool) -> bool:
    """The progress display is for people: only when stderr is a terminal and -q is not given. Asked of the
    file itself, not of Rich: FORCE_COLOR (set by many CI systems) makes Rich take any stderr for a
    terminal, and colours may follow that, but a live display's cursor codes may not go into a file."""
    if quiet:
        return False
    try:
        return os.isatty(sys.stderr.fileno())
    except (AttributeError, ValueError, OSError):  # no stderr, or one with no file behind it
        return False


def progress_bar(show: bool):
    """Documents done/total, rate and ETA on stderr; a stand-in that shows nothing when `show` is false.
    (Rich's progress machinery is imported here, and only for a display: a hidden one never needs it.)"""
    if not show:
        return NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class RateColumn(ProgressColumn):
        """Documents per second."""

        def render(self, task):
            from rich.text import Text

            elapsed = task.finished_time if task.finished else task.elapsed
            if not elapsed or not task.completed:
                return Text("")
            return Text(f"{task.completed / elapsed:.2f} docs/s", style="progress.data.speed")

    class FittedProgress(Progress):
        """Always one screen line, at any width. Rich wraps a row that does not fit, and a display of two
        lines is what a narrow terminal (60 columns or less) made of ours: its counts split, and the
        record written above it lost its last line (see `start`). So the least useful columns go first,
        then the description is cut with an ellipsis; nothing wraps."""

        # columns: 0 spinner, 1 description, 2 bar, 3 count, 4 rate, 5 elapsed, 6 "ETA", 7 time left
        DROP_ORDER = (5, 4, (6, 7), 2, 0, 1)  # the count goes last: it is what a person looks for
        BAR_MIN = 10  # a bar narrower than this says nothing
        DESCRIPTION_MIN = 12  # "Summarising" whole; a longer label is cut before any column goes

        def start(self) -> None:
            # Rich's Live keeps the height of the display it last drew and, started again after a
            # transient stop, first moves the cursor up by it to redraw in place, though the stop erased
            # it already: a two-line display then erased the last line of the record written between.
            # Nothing of the old display is on screen at a start, so it has no height.
            live_render = getattr(self.live, "_live_render", None)
            if live_render is not None:
                live_render._shape = None
            super().start()

        def make_tasks_table(self, tasks):
            from rich.table import Column, Table

            tasks = [task for task in tasks if task.visible]
            widths = self._fitting(tasks)
            table = Table.grid(
                *(Column(no_wrap=True, overflow="ellipsis", width=width) for width in widths.values()),
                padding=(0, 1),
            )
            for task in tasks:
                table.add_row(*(self.columns[i](task) for i in widths))
            return table

        def _fitting(self, tasks) -> dict[int, int | None]:
            """Which columns fit the console's width on one line, and how wide each is drawn."""
            if not hasattr(self, "live"):  # Rich renders once while it builds the display: no width yet
                return dict.fromkeys(range(len(self.columns)))
            # three columns spare: a line as wide as the screen leaves the cursor in its last column, and
            # the terminal's own "^C" echo after the display must not wrap onto a row the erase misses
            width = self.console.width - 3
            full = {
                i: 40 if i == 2 else max((self.console.measure(column(task)).maximum for task in tasks), default=0)
                for i, column in enumerate(self.columns)
            }
            needs = {**full, 1: min(full[1], self.DESCRIPTION_MIN), 2: self.BAR_MIN}
            kept = list(needs)

            def used() -> int:
                return sum(needs[i] for i in kept) + len(kept) - 1

            for drop in self.DROP_ORDER:
                if used() <= width:
                    break
                for i in drop if isinstance(drop, tuple) else (drop,):
                    kept.remove(i)
            widths = {i: needs[i] for i in kept}
            spare = width - used()
            if spare < 0:  # only the count is left, and even it is too wide: cut it
                widths[3] = max(1, widths[3] + spare)
            for i in (1, 2):  # what is left goes to the whole description, then to the bar (Rich's 40)
                if i in widths and spare > 0:
                    more = min(spare, full[i] - needs[i])
                    widths[i] += more
                    spare -= more
            return widths

    return FittedProgress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr.get(),
        transient=True,
    )


class NoProgress:
    """Stands in for the progress display when it is hidden."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def advance(self, *args, **kwargs) -> None:
        pass


class OutOfTheWay:
    """Takes the progress display off the screen while a record is written, so that no summary lands on
    the progress line and no stale line stays above it. Written to the terminal, the record is followed
    by the display at once; written to a pipe (`| cat`, `| jq`), whose reader prints it later and perhaps
    to the same terminal, the display comes back only after a pause (drawn at once, it would be left
    above the reader's line, glued to it), and never once the run is over."""

    PAUSE = 0.5  # seconds: a reader prints a flushed line long before this

    def __init__(self, progress, sink, show: bool):
        import threading

        self.progress = progress
        self.mode = None if not show else "terminal" if sink.writes_to_terminal() else "pipe"
        if self.mode == "pipe" and not sink.writes_to_pipe():
            self.mode = None  # a file: nothing reads it onto the screen
        self.lock = threading.Lock()
        self.timer = None
        self.closed = False

    @contextlib.contextmanager
    def writing(self):
        if self.mode is None:
            yield
            return
        with self.lock:
            self._cancel()
            if self.progress.live.is_started:
                self.progress.stop()  # transient: erases the display
        try:
            yield
        finally:
            if self.mode == "terminal":
                self.progress.start()
            else:
                import threading

                with self.lock:
                    self.timer = threading.Timer(self.PAUSE, self._back)
                    self.timer.daemon = True
                    self.timer.start()

    def _back(self) -> None:
        with self.lock:
            if not self.closed and not self.progress.live.is_started:
                self.progress.start()

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        """The run is over (or stopped): the display never comes back."""
        with self.lock:
            self.closed = True
            self._cancel()


def status(message: str, show: bool, verbose: bool = False):
    """A spinner with a message on stderr (what is being loaded); without a display, with -v, each step as a
    line (a first run's conversion takes many seconds, and a log should say what they went on); else a
    stand-in that shows nothing."""
    if show:
        return stderr.status(message, spinner="dots")
    return StatusLines(message) if verbose else NoStatus()


class NoStatus:
    """Stands in for a Rich status spinner when progress is hidden."""

    def __enter__(self):
        return self

    def update(self, *args, **kwargs) -> None:
        pass

    def __exit__(self, *exc):
        return False


class StatusLines(NoStatus):
    """Says each step a spinner would show, once, as a line on stderr."""

    def __init__(self, message: str):
        self._last = message
        say([message])

    def update(self, message: str = "", **kwargs) -> None:
        if message and message != self._last:
            self._last = message
            say([message])


class DefaultGroup(TyperGroup):
    """`summarize FILE ...` runs the default command, `summarize eval ...` the subcommand: a default-command
    group, as sqlite-utils and llm have. Anything that is not a subcommand's name goes to the default."""

    default_command = "summarize"

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Usage errors as plain lines (usage, hint, `Error: ...`), not Typer's Rich box, which breaks long
        paths in the middle of a name at the terminal's width."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        if {"--help", "-h"} & set(sys.argv[1:] if args is None else args):
            hook_broken_pipe()  # Typer's help is drawn by a Rich console of its own
        try:
            extra.setdefault("default_map", self.config_defaults())
        except SummarizeError as exc:
            say([f"Error: {exc}"])
            sys.exit(exc.exit_code)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            say(["Aborted."])
            sys.exit(1)
        except typer.TyperException as exc:  # Click's usage errors, whose base Typer exports
            if not hasattr(exc, "show"):
                raise
            exc.show()
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] in ("--install-completion", "--show-completion"):  # Typer's own, the group's
            return super().parse_args(ctx, args)
        args = self._subcommand_first(args)
        if args and args[0] in self.commands and args[0] != self.default_command:
            return super().parse_args(ctx, args)
        ctx._protected_args, ctx.args = [], list(args)
        return ctx.args

    def config_defaults(self) -> dict:
        """The config file as Click default maps, one per command: top-level keys for every command that
        has the option, the [eval] table for eval's own. Checked whole before anything runs."""
        from summarize_cli.cli.config import check_generation, config_path, option_defaults, read_config

        path = config_path()
        data = read_config(path)
        if not data:
            return {}
        eval_table = data.get("eval", {})
        if not isinstance(eval_table, dict):
            raise SettingsError(f"the config file {path}: 'eval' must be a table ([eval])")
        models = data.get("models", {})
        if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
            raise SettingsError(f'the config file {path}: [models] maps languages to models: zh = "MODEL"')
        top = {k: v for k, v in data.items() if k not in ("eval", "models")}
        if models and "model-for" not in top:
            top["model-for"] = [f"{language}={model}" for language, model in models.items()]
        options = {name: long_options(command) for name, command in self.commands.items()}
        known = {k: v for name, opts in options.items() if name != self.default_command for k, v in opts.items()}
        option_defaults(path, top, {**known, **options[self.default_command]})  # all known, summarize's first
        maps = {}
        own = options[self.default_command]
        for name, opts in options.items():
            # a top-level key is summarize's; it applies to another command only where the option takes the
            # same values there (`format = "jsonl"` is summarize's, eval's format is its [eval] table's)
            table = {k: v for k, v in top.items() if k in opts and same_values(opts[k], own.get(k))}
            if name == "eval":
                table.update(eval_table)
            maps[name] = option_defaults(path, table, opts)
            check_generation(path, maps[name])
        return maps

    def _subcommand_first(self, args: list[str]) -> list[str]:
        """`summarize --offline eval data.jsonl` means `summarize eval --offline data.jsonl`: options given
        before a subcommand's name apply to it (and one it does not have is its usage error)."""
        takes_value = {
            name
            for param in self.commands[self.default_command].params
            if not getattr(param, "is_flag", False) and param.param_type_name == "option"
            for name in param.opts
        }
        i = 0
        while i < len(args):
            word = args[i]
            if word == "--" or not word.startswith("-") or word == "-":
                break
            i += 2 if word in takes_value else 1  # an option, and its value when it takes one
        if 0 < i < len(args) and args[i] in self.commands and args[i] != self.default_command:
            sub = args[i]
            theirs = {opt for param in self.commands[sub].params for opt in param.opts}
            foreign = [w.split("=")[0] for w in args[:i] if w.startswith("-") and w.split("=")[0] not in theirs]
            if foreign:
                raise typer.BadParameter(
                    f"{', '.join(foreign)} belongs to summarize, not to summarize {sub}: "
                    f"options before '{sub}' are taken as {sub}'s",
                    param_hint=foreign[0],
                )
            return [sub, *args[:i], *args[i + 1 :]]
        return args

    def resolve_command(self, ctx, args):
        """Shell completion resolves words itself: a word that is no subcommand's name is the default's."""
        if ctx.resilient_parsing and args and args[0] not in self.commands:
            return self.default_command, self.commands[self.default_command], args
        return super().resolve_command(ctx, args)

    def shell_complete(self, ctx, incomplete):
        """`summarize --mo<TAB>`: the default command's options as well as the subcommands' names."""
        found = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-"):
            command = self.commands[self.default_command]
            sub = command.make_context(ctx.info_name, [], parent=ctx, resilient_parsing=True)
            found += command.shell_complete(sub, incomplete)
        return found

    def invoke(self, ctx):
        if ctx._protected_args:
            return super().invoke(ctx)
        args, ctx.args = ctx.args, []
        command = self.commands[self.default_command]
        with ctx:
            # a context of its own, named as the program: usage and errors read `summarize ...`
            defaults = (ctx.default_map or {}).get(self.default_command)
            sub_ctx = command.make_context(ctx.info_name, args, obj=self, default_map=defaults)
            with sub_ctx:
                return sub_ctx.command.invoke(sub_ctx)


def same_values(param, other) -> bool:
    """Whether two commands' options of one name take the same values (type and choices)."""
    if other is None:
        return True  # another command's own option: the top level is the only place it can be given
    kind = (type(param.type), tuple(getattr(param.type, "choices", ()) or ()))
    return kind == (type(other.type), tuple(getattr(other.type, "choices", ()) or ()))


def long_options(command) -> dict:
    """A command's options by long name without dashes (`num-beams`): the config file's keys."""
    return {
        opt[2:]: param
        for param in command.params
        if param.param_type_name == "option"
        for opt in param.opts
        if opt.startswith("--")
    }


class DefaultCommand(TyperCommand):
    """The default command's help also lists the group's subcommands, so `summarize --help` shows `eval`."""

    def format_help(self, ctx, formatter) -> None:
        super().format_help(ctx, formatter)
        group = ctx.obj if isinstance(ctx.obj, DefaultGroup) else None
        if group is None:
            return
        commands = [c for name, c in group.commands.items() if name != group.default_command and not c.hidden]
        from typer import rich_utils

        rich_utils._print_commands_panel(
            name="Commands",
            commands=commands,
            markup_mode=self.rich_markup_mode,
            console=rich_utils._get_rich_console(),
            cmd_len=max(len(c.name or "") for c in commands),
        )
