"""Helpers shared by the absl entry points: one-line errors with exit status 2, flag parsing that reports bad flags
and missing flagfiles that way, and flags defined from (and read back into) a config dataclass's fields."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging as logging_std
import os
import sys
import types
import typing
import warnings
from typing import Any, Callable, Iterable, NoReturn

from absl import app, flags, logging

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 3
"""A run stopped by a signal at a step boundary; rerunning the same command resumes it."""
EXIT_NO_SPACE = 4
"""A write failed for lack of room (disk full, quota, file-size limit); the last commit is intact and rerunning the
same command, once there is room, resumes."""
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
FLAGS = flags.FLAGS

FLAG_KINDS: dict[str, str] = {
    **{n: "seed" for n in ("seed", "data_seed", "finetune_seed", "eval_seed", "permutation_seed", "split_seed")},
    **{
        n: "count"
        for n in (
            "epochs",
            "steps_per_call",
            "max_buckets",
            "trees",
            "loto_trees",
            "max_depth",
            "folds",
            "bootstrap",
            "calls",
            "loop_sample",
            "table_iv_models",
            "utilization_repeats",
            "episodes",
            "sequences",
            "max_lag",
            "num_sequences",
            "top",
            "top_k",
            "seeds",
            "max_models_per_program",
            "eval_max_envs",
            "eval_max_steps",
            "images_per_sequence",
            "num_symbols",
            "ah_eval_episodes",
            "substeps",
            "sample_interval",
            "delay",
            "horizon",
            "stride",
            "max_episode_steps",
            "num_processes",
            "sizes",
            "per_stratum",
            "spec_repeats",
            "race_eta",
            "race_top",
            "modulus",
            "num_frequencies",
            "recall_steps",
            "window",
        )
    },
    **{
        n: "count0"
        for n in (
            "eval_episodes",  # 0: no environment scoring (AdroitConfig)
            "num_models",
            "config_repeats",
            "num_candidates",
            "train_top",
            "race_diverse",
            "generated",
            "lag",
            "finetune_steps",
            "max_models_per_chunk",
            "washout",
            "burn_in",
            "process_id",
            "train_size",
            "val_size",
            "test_size",
            "ah_train_size",
            "ah_val_size",
        )
    },
    **{n: "batch" for n in ("batch_size", "eval_batch_size", "finetune_batch_size")},
    "unroll": "unroll",
    **{n: "dim" for n in ("input_dim", "output_dim", "hidden_dim", "image_size", "seq_len", "max_len", "length")},
    "dense_hidden": "dim",
    **{n: "dim" for n in ("state_dim", "teacher_hidden")},
    "num_classes": "dim0",
    "budget": "budget",
    **{
        n: "positive"
        for n in (
            "hidden_mean",
            "config_lr",
            "diverge_threshold",
            "exponent",
            "tau",
            "max_hidden_factor",
            "concentration",
            "race_budget",
            "spectral_radius",
        )
    },
    "learning_rates": "positive",
    **{n: "nonnegative" for n in ("hidden_std", "gamma", "beta", "noise")},
    **{n: "unit_open" for n in ("balance_target", "balance_targets")},
    **{n: "unit_half" for n in ("uniform_density", "leak_alpha", "io_density", "recurrent_density")},
    **{n: "unit" for n in ("hh_graph_beta", "density", "densities", "fractions")},
}
"""The bounds kind (``sparse_rnn_jax.core.bounds.KINDS``) of every numeric flag of every entry point (list flags:
of each item). ``run`` checks every flag given against it before the entry's own checks, so a flag has the same
bounds in every entry and in the config dataclasses."""


def check_flag_values() -> None:
    """Exits 2 (one line naming the flag) on the first flag value outside its kind's bounds (``FLAG_KINDS``)."""
    from sparse_rnn_jax.core import bounds

    for name, kind in FLAG_KINDS.items():
        if name not in FLAGS or FLAGS[name].value is None:
            continue
        value = FLAGS[name].value
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                try:
                    item = bounds.KINDS[kind].parse(item.strip())
                except ValueError:
                    fail(f"--{name} must be {bounds.KINDS[kind].words()}, got {item[:40]!r}")
            text = bounds.problem(f"--{name}", item, kind)
            if text:
                fail(text)


def fail(message: str) -> NoReturn:
    """Prints ``error: message`` on one line to stderr and exits with status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def check_path(flag: str, path: str | None, kind: str = "dir") -> str | None:
    """Exits 2 (one line naming ``--flag``) unless a folder (``kind="dir"``) or file (``"file"``) can be created or
    written at ``path`` (``~`` expanded; cloud URLs are not checked). Returns the expanded path (None for None)."""
    if path is None:
        return None
    from sparse_rnn_jax.engine.workdir import path_problem

    expanded = os.path.expanduser(path)
    problem = path_problem(expanded, kind)
    if problem:
        fail(f"--{flag}: {problem}")
    return expanded


def expand_user(*names: str) -> None:
    """Expands a leading ``~`` in the path flags ``names`` (string or list flags), as a shell would have."""
    for name in names:
        flag = FLAGS[name]
        if isinstance(flag.value, str):
            flag.value = os.path.expanduser(flag.value)
        elif isinstance(flag.value, list):
            flag.value = [os.path.expanduser(v) for v in flag.value]


class _QuietFileHandler(logging_std.FileHandler):
    """The log file's handler: a failed write (a full disk) closes it without a traceback (the run's own writes
    report the problem in one line)."""

    def handleError(self, record) -> None:
        try:
            logging_std.getLogger(LOGGER).removeHandler(self)
            self.close()
        except Exception:  # noqa: BLE001 - nothing more to do for a log file that cannot be written
            pass


LOGGER = "sparse_rnn_jax"
"""The logger of the entry points' progress messages (results themselves go to stdout)."""


def logger(log_file: str | os.PathLike | None = None) -> Callable[[str], None]:
    """A ``log(message)`` for the library's progress messages, through Python's logging (which absl.logging wraps):
    INFO and up on stderr (``--verbosity=-1`` keeps warnings only, 1 adds debug), lines starting with "warning:" at
    WARNING, and every message with a timestamp appended to ``log_file`` once its folder exists (the run creates it
    after its checks)."""
    import logging as std_logging

    log = std_logging.getLogger(LOGGER)
    log.propagate = False
    verbosity = FLAGS["verbosity"].value if FLAGS["verbosity"].present else 0
    log.setLevel(std_logging.DEBUG if verbosity >= 1 else std_logging.INFO if verbosity == 0 else std_logging.WARNING)
    if not any(getattr(h, "_sparse_rnn_stderr", False) for h in log.handlers):
        stderr = std_logging.StreamHandler(sys.stderr)
        stderr.setFormatter(std_logging.Formatter("%(message)s"))
        stderr._sparse_rnn_stderr = True
        log.addHandler(stderr)
    attached = [log_file is None]

    def attach() -> None:  # once the run has created its folder: a bad input never leaves one behind
        if attached[0] or not os.path.isdir(os.path.dirname(os.path.abspath(log_file))):
            return
        attached[0] = True
        try:
            handler = _QuietFileHandler(log_file)
        except OSError:
            return  # an unwritable folder is reported by the run's own checks, in one line
        handler.setFormatter(std_logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        handler.handle(
            log.makeRecord(LOGGER, std_logging.INFO, __file__, 0, "command: %s", (" ".join(sys.argv),), None)
        )  # into the file only

    def emit(message: str) -> None:
        attach()
        (log.warning if message.startswith("warning") else log.info)(message)

    return emit


def check_no_positional(argv) -> None:
    if len(argv) > 1:
        fail(f"unexpected positional arguments: {' '.join(argv[1:])}")


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return FLAGS(argv)
    except flags.Error as e:
        fail(str(e).replace("ERROR:: ", "").splitlines()[0])


HELP_GROUPS: list[tuple[str, list[str]]] = []
"""(title, flag names) groups that ``--help`` lists, in order (entry points add theirs with ``help_group``)."""


def help_group(title: str, names: Iterable[str]) -> None:
    """Lists the flags ``names`` under ``title`` in ``--help``."""
    HELP_GROUPS.append((title, list(names)))


def _flag_line(name: str) -> str:
    flag = FLAGS[name]
    kind = "" if flag.flag_type() in ("string", "bool") else f" ({flag.flag_type()})"
    default = "" if flag.default is None else f" [default: {flag.default_as_str.strip(chr(39))}]"
    return f"  --{name}{kind}: {flag.help}{default}"


def print_help(doc: str | None) -> None:
    """The entry's docstring, its flags by group (``HELP_GROUPS``), then its other own flags."""
    print((doc or "").strip() + "\n")
    shown: set[str] = set()
    for title, names in HELP_GROUPS:
        names = sorted(n for n in names if n in FLAGS and n not in shown)
        if names:
            print(f"{title}:\n" + "\n".join(_flag_line(n) for n in names) + "\n")
            shown.update(names)
    own = sorted({f.name for f in FLAGS.get_key_flags_for_module(sys.argv[0])} - shown)
    if own:
        print("options:\n" + "\n".join(_flag_line(n) for n in own) + "\n")
    print("Flags may also come from --flagfile=FILE (one --flag=value per line); --helpfull lists every flag.")


def run(main: Callable[[list[str]], Any]) -> None:
    """``absl.app.run`` whose flag errors (unknown flag, bad value, missing flagfile) are one line, exit 2, and
    whose ``--help`` lists the entry's flags by group. Library INFO logs are hidden
    unless ``--verbosity`` asks for them; Python warnings print as one line (``warning: ...``)."""
    if any(a in ("-h", "-help", "--help", "--helpshort", "-?") for a in sys.argv[1:]):
        print_help(sys.modules["__main__"].__doc__)
        sys.exit(0)

    def wrapped(argv):
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        check_flag_values()
        try:
            with one_line_warnings():
                return main(argv)
        except BrokenPipeError:  # stdout closed early (``| head``): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as e:
            if e.errno not in NO_SPACE_ERRNOS:
                raise
            from sparse_rnn_jax.engine.workdir import NoSpaceError, no_space_message

            text = str(e) if isinstance(e, NoSpaceError) else no_space_message(None, None, e)
            print(f"error: {text}; make room and rerun the same command to resume", file=sys.stderr)
            sys.exit(EXIT_NO_SPACE)

    app.run(wrapped, flags_parser=_parse_flags)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


@contextlib.contextmanager
def one_line_warnings():
    """Python warnings print as one line (``warning: ...``) inside the block; the format is restored after it."""
    previous = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        yield
    finally:
        warnings.formatwarning = previous


def flag_error(e: Exception) -> str:
    """A library error as one line; one that starts with a flag's name ("budget: ...", "epochs must be ...") names
    the flag ("--budget: ...")."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    first = text.replace(":", " ").split(" ", 1)[0]
    return f"--{text}" if first in FLAGS else text


def _base_type(tp) -> tuple[type, bool]:
    """(the flag's value type, whether None is allowed) of a dataclass field's type hint."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])[0], True
    if tp is tuple or typing.get_origin(tp) is tuple:
        return tuple, False
    return tp, False


def define_dataclass_flags(
    cls: type,
    *,
    skip: Iterable[str] = (),
    defaults: dict | None = None,
    help_suffix: dict | None = None,
    help_text: dict | None = None,
) -> list[str]:
    """Defines one absl flag per field of ``cls`` (name = field name, help from the field's ``help`` metadata, or
    ``help_text``) unless the flag exists already; ``defaults`` overrides a flag's default. Returns the field
    names."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        names.append(f.name)
        if f.name in FLAGS:
            continue
        default = (defaults or {}).get(f.name, f.default)
        helptext = (help_text or {}).get(f.name, f.metadata.get("help", f.name)) + (help_suffix or {}).get(f.name, "")
        kind, _ = _base_type(hints[f.name])
        if kind is bool:
            flags.DEFINE_bool(f.name, default, helptext)
        elif kind is int:
            flags.DEFINE_integer(f.name, default, helptext)
        elif kind is float:
            flags.DEFINE_float(f.name, default, helptext)
        elif kind is tuple:
            flags.DEFINE_list(f.name, list(default) if default is not None else None, helptext)
        else:
            flags.DEFINE_string(f.name, default, helptext)
    return names


def dataclass_from_flags(cls: type, *, omit_none: bool = False, **extra):
    """An instance of ``cls`` from the flags named like its fields (``extra`` values win); with ``omit_none`` a
    flag whose value is None leaves the field at its dataclass default. A bad value exits 2 naming the flag."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in extra or f.name not in FLAGS:
            continue
        v = FLAGS[f.name].value
        if v is None and omit_none:
            continue
        values[f.name] = tuple(v) if isinstance(v, list) else v
    values.update(extra)
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        fail(flag_error(e))
