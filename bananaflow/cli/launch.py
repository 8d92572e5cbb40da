"""Running the catalog flow from the command line: the one place the CLI imports Prefect's
side (lazily, so ``bananaflow simulator`` and ``prompts`` never load Prefect)."""
from __future__ import annotations

import logging
import os

from bananaflow.errors import BananaflowError
from bananaflow.options import RunOptions
from bananaflow.secrets import install_log_redaction

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USAGE = 0, 1, 2


def run_flow(catalog: str, options: RunOptions, *, show_progress: bool = True) -> dict:
    """Run the catalog flow in this process, with a progress bar, and print its summary."""
    from bananaflow.cli.console import print_summary, progress_bar

    quiet_prefect_console(show_progress)
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    with progress_bar(show_progress):
        summary = catalog_to_images(catalog=catalog, **dict(options))
    print_summary(summary)
    return summary


def exit_code(summary: dict) -> int:
    """0 when every item succeeded, already existed or was blocked; 1 otherwise."""
    return EXIT_OK if summary["ok"] else EXIT_ITEMS_FAILED


class _NoTracebackForUserErrors(logging.Filter):
    """A user's mistake (a bad template field, an unreadable catalog) is reported in one
    line by the CLI and in the flow run's state; a traceback would only bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], BananaflowError):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_prefect_console(quiet: bool) -> None:
    """With a progress bar on screen, Prefect's INFO lines go to the UI only."""
    install_log_redaction()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_NoTracebackForUserErrors())
    if not quiet:
        return
    # Only the console handler: the API handler must still send INFO lines to the UI.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
