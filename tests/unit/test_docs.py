"""The README documents every setting, and the worker honours LOG_LEVEL."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text("utf-8")
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == []


def test_log_level_setting_becomes_the_worker_flag() -> None:
    from export_service import _with_default_log_level

    defaulted = _with_default_log_level(["x", "worker"], "WARNING")
    assert defaulted == ["x", "worker", "--loglevel", "warn"]
    # Faust's worker refuses any other spelling (it exits with a usage error).
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        flag = _with_default_log_level(["x", "worker"], level)[-1]
        assert flag in {"crit", "error", "warn", "info", "debug"}
    explicit = ["x", "worker", "-l", "info"]
    assert _with_default_log_level(explicit, "WARNING") == explicit


def _exportctl_lines(text: str) -> list[list[str]]:
    """Every `exportctl ...` command in the README's shell blocks, as argv (continuations
    joined, `$VARS` and `<placeholders>` kept as words)."""
    import shlex

    commands: list[list[str]] = []
    in_shell = False
    pending = ""
    for line in text.splitlines():
        if line.startswith("```"):
            in_shell = line.strip() in ("```sh", "```bash")
            continue
        if not in_shell:
            continue
        line = pending + line.split(" #", 1)[0].strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        spaced = line.replace("$(", "( ").replace(")", " )")
        words = shlex.split(spaced, comments=True) if line else []
        for i, word in enumerate(words):
            if word.endswith("exportctl"):
                end = next((j for j in range(i + 1, len(words)) if words[j] in "|;&&)"), None)
                commands.append(words[i + 1 : end])
    return commands


def test_every_exportctl_command_in_the_readme_parses() -> None:
    """The README's CLI examples are runnable as shown: each names real subcommands and
    options with valid values (click parses them without calling the service)."""
    import warnings

    import click

    from cli.main import cli

    def rest(ctx: click.Context) -> list[str]:
        # Click 8.2+ deprecates protected_args (9.0 puts everything in args).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return [*ctx.protected_args, *ctx.args]

    commands = _exportctl_lines(README.read_text("utf-8"))
    assert len(commands) >= 6
    for argv in commands:
        group: click.Group = cli
        ctx = cli.make_context("exportctl", list(argv), resilient_parsing=False)
        args = rest(ctx)
        while args:
            command = group.get_command(ctx, args[0])
            assert command is not None, f"unknown command in README: exportctl {argv}"
            ctx = command.make_context(args[0], args[1:], parent=ctx)
            if not isinstance(command, click.Group):
                break
            group = command
            args = rest(ctx)
