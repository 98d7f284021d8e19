"""Retries: transient failures are retried by the op retry policy, permanent ones are not.

A ``RetryPolicy`` retries any exception; ``permanent_errors`` turns the errors that cannot heal
(unknown symbol, checksum mismatch) into ``Failure(allow_retries=False)`` so the policy skips them.
"""

from dagster import DagsterEventType, DagsterInstance, Definitions, RetryPolicy, asset, define_asset_job

from cryptolake_assets.retries import TRANSIENT_RETRY_POLICY, permanent_errors


class InvalidSymbolError(ValueError):
    """Stands in for resources.binance.InvalidSymbolError (Binance -1121 "Invalid symbol.")."""


ATTEMPTS: list[str] = []


def run(behaviour: str):
    @asset(name=f"stub_{behaviour}")
    def stub() -> None:
        ATTEMPTS.append(behaviour)
        with permanent_errors(InvalidSymbolError):
            if behaviour == "permanent":
                raise InvalidSymbolError("Binance -1121: Invalid symbol. (FOOUSDT)")
            if behaviour == "transient" or (behaviour == "flaky" and len(ATTEMPTS) == 1):
                raise TimeoutError("read timed out")

    ATTEMPTS.clear()
    job = define_asset_job("j", selection=[stub], op_retry_policy=RetryPolicy(max_retries=2))
    defs = Definitions(assets=[stub], jobs=[job])
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("j").execute_in_process(instance=instance, raise_on_error=False)
        failures = [
            event.event_specific_data.error.message
            for event in instance.all_logs(result.run_id, of_type=DagsterEventType.STEP_FAILURE)
            for event in [event.dagster_event]
        ]
    return result.success, len(ATTEMPTS), failures


def test_permanent_error_fails_at_once_with_its_message():
    success, attempts, failures = run("permanent")

    assert (success, attempts) == (False, 1)
    assert "InvalidSymbolError: Binance -1121: Invalid symbol. (FOOUSDT) (permanent error, not retried)" in failures[0]


def test_transient_error_is_retried_up_to_the_limit():
    assert run("transient")[:2] == (False, 3)


def test_transient_error_that_heals_succeeds():
    assert run("flaky")[:2] == (True, 2)


def test_default_policy_backs_off_with_jitter():
    assert TRANSIENT_RETRY_POLICY.max_retries == 3
    assert TRANSIENT_RETRY_POLICY.delay == 30
    assert TRANSIENT_RETRY_POLICY.backoff.value == "EXPONENTIAL"
    assert TRANSIENT_RETRY_POLICY.jitter.value == "PLUS_MINUS"
