"""The alerting loop of one server process.

Every ``interval`` seconds: record stream threshold alerts handed over by the live
stream; for each org (claimed with a short lease, so several processes share the work)
judge the complete minutes since the last round for anomalies and evaluate its threshold
rules; resolve anomaly alerts that went quiet; send due notifications.

The stream hands its alerts over through :meth:`AlertRunner.stream_alert`, which only
queues: the event loop never waits for the database.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from meterline.alerts.evaluator import describe, evaluate_rule
from meterline.alerts.lifecycle import Firing
from meterline.alerts.service import AlertService, anomaly_firing
from meterline.auth.tables import orgs
from meterline.errors import MeterlineError
from meterline.insight.anomalies import AnomalyEngine, DetectionSettings, z_for
from meterline.insight.anomalies.tables import anomaly_watermarks
from meterline.query import QueryService

log = logging.getLogger(__name__)


class AlertRunner:
    """Runs rounds on a daemon thread; ``run_once`` is one round (what tests drive)."""

    def __init__(
        self,
        service: AlertService,
        queries: QueryService,
        detection: DetectionSettings | None = None,
    ) -> None:
        self.service = service
        self.queries = queries
        self.engine = AnomalyEngine(queries, detection)
        self.owner = "a_" + secrets.token_hex(6)
        self._stream: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0

    @property
    def config(self) -> Any:
        """The alerting settings."""
        return self.service.config

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Run rounds on a background thread until :meth:`stop`.

        Stream threshold state lives in this process's memory and starts empty, so
        stream alerts left open by an earlier run are resolved first; the live stream
        fires them again if their thresholds still hold.
        """
        self.service.clear_source("stream", "the server restarted")
        self._thread = threading.Thread(target=self._loop, name="meterline-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("alerting round failed")
            self._stop.wait(self.config.interval)

    def stream_alert(self, org_id: str, message: dict[str, Any]) -> None:
        """Queue an ``alert`` frame of the live stream for recording (thread-safe)."""
        self._stream.put((org_id, message))

    # -- one round -------------------------------------------------------------------------

    def run_once(self) -> dict[str, int]:
        """One round; returns counts of what it did (for logs and tests)."""
        done = {"stream": self._record_stream(), "orgs": 0, "findings": 0}
        with self.service.engine.connect() as conn:
            org_ids = [r.org_id for r in conn.execute(select(orgs.c.org_id))]
        for org_id in org_ids:
            if self._stop.is_set():
                break
            if not self._claim(org_id):
                continue
            try:
                done["findings"] += self._anomalies(org_id)
                self._thresholds(org_id)
                done["orgs"] += 1
            except MeterlineError as exc:
                log.warning("alerting for org %s skipped this round: %s", org_id, exc.message)
            except Exception:
                # one org's failure must not starve the others of their round
                log.exception("alerting for org %s failed this round", org_id)
            finally:
                self._release(org_id)
        done["resolved"] = self.service.resolve_quiet_anomalies()
        done["notified"] = self.service.notifications.process()
        if self.service.clock() - self._last_sweep > 3600:
            self._last_sweep = self.service.clock()
            done["swept"] = self.service.sweep()
        return done

    def _record_stream(self) -> int:
        count = 0
        while True:
            try:
                org_id, message = self._stream.get_nowait()
            except queue.Empty:
                return count
            count += 1
            fingerprint = f"stream|{message.get('alert_id')}"
            if message.get("state") == "resolved":
                self.service.clear(org_id, fingerprint, "the stream threshold stopped holding")
                continue
            value = message.get("value")
            metric = str(message.get("metric"))
            self.service.fire(
                org_id,
                Firing(
                    source="stream",
                    fingerprint=fingerprint,
                    metric=metric,
                    message=f"live stream: {metric} {message.get('condition')} "
                    f"{message.get('threshold')} for {message.get('duration')} "
                    f"(subscription {message.get('subscription_id')}); value {value}",
                    where={"subscription_id": str(message.get("subscription_id"))},
                    observed=float(value) if isinstance(value, int | float) else None,
                    condition=message.get("condition"),
                    threshold=message.get("threshold"),
                ),
            )

    # -- per org ---------------------------------------------------------------------------

    def _claim(self, org_id: str) -> bool:
        now = self.service.clock()
        values = {
            "lease_owner": self.owner,
            "lease_until": now + max(60.0, 4 * self.config.interval),
        }
        with self.service.engine.begin() as conn:
            taken = conn.execute(
                update(anomaly_watermarks)
                .where(
                    anomaly_watermarks.c.org_id == org_id,
                    or_(
                        anomaly_watermarks.c.lease_until.is_(None),
                        anomaly_watermarks.c.lease_until < now,
                    ),
                )
                .values(**values)
            )
            if taken.rowcount == 1:
                return True
        try:
            with self.service.engine.begin() as conn:
                conn.execute(anomaly_watermarks.insert().values(org_id=org_id, learned=0, **values))
        except IntegrityError:
            return False  # another process holds it
        return True

    def _release(self, org_id: str) -> None:
        with self.service.engine.begin() as conn:
            conn.execute(
                update(anomaly_watermarks)
                .where(
                    anomaly_watermarks.c.org_id == org_id,
                    anomaly_watermarks.c.lease_owner == self.owner,
                )
                .values(lease_owner=None, lease_until=None)
            )

    def _anomalies(self, org_id: str) -> int:
        cfg = self.config
        end = int(self.service.clock() - cfg.anomaly_lag) // 60  # first incomplete minute
        with self.service.engine.connect() as conn:
            mark = conn.execute(
                select(anomaly_watermarks).where(anomaly_watermarks.c.org_id == org_id)
            ).one()
        learned = bool(mark.learned)
        if not learned:
            learned = self.engine.has_history_before(org_id, end - int(cfg.learning // 60))
        start = end - cfg.recheck_minutes
        if mark.evaluated_until is not None:
            start = min(start, int(mark.evaluated_until))
        start = max(start, end - cfg.max_backlog_minutes)
        found = 0
        if learned:
            sensitivity = self.service.book.sensitivities(org_id)
            z = {kind: z_for(s) for kind, s in sensitivity.items()}
            # the window detectors only see something new once a minute has completed
            fresh = not mark.learned or mark.evaluated_until is None
            fresh = fresh or end > int(mark.evaluated_until)
            findings = self.engine.detect(org_id, start, end, z, windows=fresh)
            episodes = self.service.history.record(
                org_id, findings, sensitivity, self.service.clock()
            )
            for episode in episodes:
                self.service.fire(org_id, anomaly_firing(episode))
            found = len(findings)
        with self.service.engine.begin() as conn:
            conn.execute(
                update(anomaly_watermarks)
                .where(anomaly_watermarks.c.org_id == org_id)
                .values(evaluated_until=float(end), learned=int(learned))
            )
        return found

    def _thresholds(self, org_id: str) -> None:
        now = self.service.clock()
        rules = self.service.rules.rows(org_id, "threshold")
        live = {f"threshold|{rule.rule_id}" for rule in rules}
        for fingerprint in set(self.service.book.active_fingerprints(org_id, "threshold")) - live:
            self.service.clear(org_id, fingerprint, "the rule was deleted or disabled")
        for rule in rules:
            try:
                verdict = evaluate_rule(self.queries, org_id, rule, now)
            except MeterlineError as exc:
                log.warning("rule %s not evaluated: %s", rule.rule_id, exc.message)
                continue
            fingerprint = f"threshold|{rule.rule_id}"
            if not verdict.breached:
                if rule.pending_since is not None:
                    self.service.rules.set_pending(rule.rule_id, None)
                shown = "no data" if verdict.value is None else f"{verdict.value:g}"
                self.service.clear(org_id, fingerprint, f"the condition cleared (value {shown})")
                continue
            since = rule.pending_since
            if since is None:
                since = now
                self.service.rules.set_pending(rule.rule_id, since)
            if now - since < rule.duration:
                continue
            self.service.fire(
                org_id,
                Firing(
                    source="threshold",
                    fingerprint=fingerprint,
                    metric=rule.metric,
                    message=describe(rule, verdict.value),
                    rule_id=rule.rule_id,
                    where={f["field"]: str(f["value"]) for f in _filters(rule)},
                    observed=verdict.value,
                    condition=rule.condition,
                    threshold=rule.value,
                ),
            )


def _filters(rule: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(rule.filters)
    return found
