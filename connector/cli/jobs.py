"""`connector worker` runs the background jobs; `connector jobs failed|retry|status` shows
and recovers the ones that failed after their last try."""

from __future__ import annotations

import logging

import click
from flask import Flask

from connector.cli.groups import Groups
from connector.cli.people import table, when
from connector.jobs import get_jobs


def register(app: Flask, groups: Groups) -> None:
    @app.cli.command("worker")
    @click.option(
        "--workers",
        default=2,
        show_default=True,
        type=click.IntRange(min=1, max=64),
        help="Jobs run at once (threads).",
    )
    def worker_command(workers: int) -> None:
        """Run background jobs (Huey's consumer) until Ctrl-C, which lets running jobs end."""
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        jobs = get_jobs(app)
        click.echo(f"Worker: {workers} thread(s), jobs from {jobs.where}", err=True)
        # What a worker killed mid-job left behind (mail stored but not routed, mail not
        # sent, mailboxes due) is taken up at once, not at the next minute.
        jobs.run_periodic()
        jobs.consumer(workers=workers).run()

    group = click.Group("jobs", help="Background jobs: the failed ones, and trying them again.")
    app.cli.add_command(group)

    @group.command("failed")
    @click.option("--traceback", "show_traceback", is_flag=True, help="Show where each failed.")
    def failed_command(show_traceback: bool) -> None:
        """List the jobs that failed after their last try, with their error."""
        failed = get_jobs(app).failed()
        if not failed:
            click.echo("No failed jobs.")
            return
        table(
            ["ID", "JOB", "FAILED (UTC)", "TRIES", "ARGUMENTS", "ERROR"],
            [
                [
                    job.id,
                    job.name,
                    when(job.failed_at).removesuffix(" UTC"),
                    str(job.attempts),
                    " ".join(f"{k}={v}" for k, v in job.arguments.items()),
                    job.error.splitlines()[0] if job.error else "",
                ]
                for job in failed
            ],
        )
        if show_traceback:
            for job in failed:
                click.echo(f"\n{job.id} {job.name}:\n{job.traceback.rstrip()}")

    @group.command("retry")
    @click.argument("job_id", metavar="ID", required=False)
    @click.option("--all", "retry_all", is_flag=True, help="Every failed job.")
    def retry_command(job_id: str | None, retry_all: bool) -> None:
        """Queue a failed job again (by its ID from `jobs failed`), or all of them."""
        if bool(job_id) == retry_all:
            raise click.UsageError("Give the ID of a failed job, or --all.")
        jobs = get_jobs(app)
        if retry_all:
            count = jobs.retry_all()
            click.echo(f"Queued {count} failed job(s) again.")
            return
        assert job_id is not None
        if not jobs.retry(job_id.strip()):
            raise click.ClickException(
                f"There is no failed job {job_id!r}: `connector jobs failed` lists them."
            )
        click.echo(f"Queued job {job_id} again.")

    @group.command("status")
    def status_command() -> None:
        """How many jobs wait, and how many failed."""
        jobs = get_jobs(app)
        click.echo(f"Queue: {jobs.where}")
        click.echo(f"Waiting (queued or to be retried): {jobs.pending()}")
        click.echo(f"Failed: {len(jobs.failed())}")
