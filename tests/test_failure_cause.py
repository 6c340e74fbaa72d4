"""A failed run names its cause in a run tag, whichever way it was launched."""

from dagster import DagsterEventType, DagsterInstance, asset, build_run_status_sensor_context, materialize

from webr_dagster.failures import FAILURE_TAG, failure_cause_sensor


class ModelNotAnswering(RuntimeError):
    pass


@asset
def stage_that_fails() -> None:
    raise ModelNotAnswering("20 calls failed with APIConnectionError and none was "
                            "answered\nsecond line of detail")


def test_the_failure_sensor_tags_a_failed_run_with_its_cause():
    instance = DagsterInstance.ephemeral()
    result = materialize([stage_that_fails], instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert FAILURE_TAG not in run.tags
    [failure] = [event for event in result.all_events
                 if event.event_type == DagsterEventType.RUN_FAILURE]

    context = build_run_status_sensor_context(
        sensor_name=failure_cause_sensor.name, dagster_event=failure,
        dagster_instance=instance, dagster_run=run).for_run_failure()
    failure_cause_sensor(context)

    tag = instance.get_run_by_id(result.run_id).tags[FAILURE_TAG]
    assert tag == ("ModelNotAnswering: 20 calls failed with APIConnectionError and none "
                   "was answered")
