"""Alerting on a failed task: a JSON POST to a webhook and/or an email, as the Variables configure.

The alert carries ids, the task's summary (its exception message, which the checks keep free of patient
data) and the log URL: never task input or XCom contents.
"""

from __future__ import annotations

import logging
from typing import Any

from beam_pipeline.contracts.job_settings import comma_list
from k2f_airflow.config import K2fConfig, load_config

log = logging.getLogger(__name__)
MAX_SUMMARY = 500


def alert_body(context: Any) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    return {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "summary": str(error)[:MAX_SUMMARY] if error is not None else "failed",
        "log_url": getattr(ti, "log_url", None),
    }


def send_alert(body: dict[str, Any], cfg: K2fConfig, post: Any = None, email: Any = None) -> list[str]:
    """Send `body` to every configured channel; the channels used. A channel failing is only logged."""
    sent = []
    if cfg.alert_webhook_url:
        try:
            if post is None:
                import httpx

                post = httpx.post
            post(cfg.alert_webhook_url, json=body, timeout=10.0).raise_for_status()
            sent.append("webhook")
        except Exception as exc:  # noqa: BLE001  (an alert must never mask the task's own failure)
            log.warning("alert webhook failed: %s", type(exc).__name__)
    recipients = comma_list(cfg.alert_emails)
    if recipients:
        subject = f"[kafka-to-fhir] {body['dag_id']}.{body['task_id']} failed"
        text = "\n".join(f"{k}: {v}" for k, v in body.items())
        try:
            (email or _send_email)(recipients, subject, text)
            sent.append("email")
        except Exception as exc:  # noqa: BLE001
            log.warning("alert email failed: %s", type(exc).__name__)
    return sent


def _send_email(recipients: list[str], subject: str, text: str) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook() as smtp:
        smtp.send_email_smtp(to=recipients, subject=subject, html_content=f"<pre>{text}</pre>")


def notify_failure(context: Any) -> None:
    """on_failure_callback of the health and replay tasks."""
    try:
        cfg = load_config()
    except Exception as exc:  # noqa: BLE001
        log.warning("alert not sent, settings unreadable: %s", exc)
        return
    sent = send_alert(alert_body(context), cfg)
    log.info("alert sent to: %s", ", ".join(sent) or "no channel configured")
