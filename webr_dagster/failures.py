"""A failed run names its cause where the UI shows it at a glance: a run tag.

Dagster's run failure message only lists the failed steps ("Steps failed: [...]"); the
error itself sits in the step's event behind "View full message". Every failed run gets
the tag ``webr/failure`` = "ErrorClass: first line of the message": the CLI's runs from
the CLI, runs launched from the UI (jobs, Materialize, backfills, automation) from the
sensor below.
"""

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

FAILURE_TAG = "webr/failure"
TAG_MAX_CHARS = 240


def failure_cause(step_failure_events) -> tuple[str, str] | None:
    """(error class, message) of the first failed step: the user code's own error, not
    Dagster's wrapper around it."""
    for event in step_failure_events:
        error = event.step_failure_data.error
        if error is None:
            continue
        while error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        message = error.message.strip().splitlines()[0] if error.message else ""
        # Dagster's text starts with the error's qualified class name: say it once.
        message = message.split(f"{error.cls_name}: ", 1)[-1]
        return error.cls_name, message
    return None


def tag_failure_cause(instance, run_id: str, step_failure_events) -> str | None:
    """Tag the run with its cause; returns the tag's value (None: no failed step)."""
    cause = failure_cause(step_failure_events)
    if cause is None:
        return None
    value = f"{cause[0]}: {cause[1]}"
    if len(value) > TAG_MAX_CHARS:
        value = value[: TAG_MAX_CHARS - 1] + "…"
    instance.add_run_tags(run_id, {FAILURE_TAG: value})
    return value


@run_failure_sensor(
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Tags every failed run with its cause ({FAILURE_TAG}), so the runs list "
    "shows why a run failed without opening its logs.",
)
def failure_cause_sensor(context: RunFailureSensorContext):
    tag_failure_cause(context.instance, context.dagster_run.run_id,
                      context.get_step_failure_events())
