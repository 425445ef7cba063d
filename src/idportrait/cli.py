"""`idportrait`: one command, one subcommand per stage of the data flow.

Each subcommand lives beside the code it drives (``<area>/command.py``) and imports its heavy
dependencies lazily, so ``idportrait --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from idportrait.adapters.consistentid.command import convert
from idportrait.annotate.command import annotate_command
from idportrait.curate.command import app as curate_app
from idportrait.demo import demo
from idportrait.errors import UserError, disk_full_error, find_disk_full, original_user_error
from idportrait.evaluation.command import app as evaluate_app
from idportrait.faces.command import app as faces_app
from idportrait.generate.command import generate_batch
from idportrait.generate.single_command import generate
from idportrait.serve.command import serve
from idportrait.shards.command import index_command
from idportrait.training.command import app as train_app

app = typer.Typer(
    name="idportrait",
    help="Identity-preserving portrait generation: curate, annotate, train, generate, evaluate, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.add_typer(curate_app, name="curate")
app.command("index")(index_command)
app.command("annotate")(annotate_command)
app.add_typer(train_app, name="train")
app.command("generate")(generate)
app.command("generate-batch")(generate_batch)
app.add_typer(evaluate_app, name="evaluate")
app.command("serve")(serve)
app.command("demo")(demo)
app.add_typer(faces_app, name="faces")
app.command("convert")(convert)


def main() -> None:
    """Console entry point: user errors become one red line and exit code 2, never a traceback.

    Usage errors (bad or missing options, unknown subcommands) are typer's own: its usage block and exit code 2.
    A full disk or quota (ENOSPC/EDQUOT), wherever it is raised and however a library wraps it, is a user error
    too (`idportrait.errors.disk_full_error`); the writers have already removed their half-written files.
    """
    try:
        app(prog_name="idportrait")
    except UserError as err:
        fail(original_user_error(err))
    except Exception as err:
        full = find_disk_full(err)
        if full is None:
            raise
        fail(original_user_error(disk_full_error(full)))


def fail(err: UserError) -> None:
    """Print ``err`` as one ``error:`` line on stderr and exit with its code."""
    Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
