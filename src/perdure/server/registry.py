"""Deployments, services and handlers as the engine sees them; pure, rebuilt from stored rows.

The registry is read by the ingress (which services exist, is this handler public, what type is
it), the partition (which deployment serves a new invocation, which retry policy and
retention apply) and the admin API. It is rebuilt from storage whenever a deployment is
registered or removed, so there is one source of truth: the `deployments` and `services` rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perdure.server.storage.api import DeploymentRow, HandlerType, ServiceRow, ServiceType

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between attempts; Restate's option names and defaults."""

    initial_interval_ms: int = 500
    factor: float = 2.0
    max_interval_ms: int = 60_000
    max_attempts: int | None = 70  # None: unlimited
    on_max_attempts: str = "pause"  # "pause" | "kill"

    def delay_ms(self, failed_attempts: int) -> int:
        """The wait before the next attempt after `failed_attempts` (>= 1) failures in a row."""
        exponent = max(0, failed_attempts - 1)
        delay = self.initial_interval_ms * (self.factor**exponent)
        return int(min(delay, self.max_interval_ms))

    def is_exhausted(self, attempts: int) -> bool:
        return self.max_attempts is not None and attempts >= self.max_attempts


@dataclass(frozen=True, slots=True)
class Defaults:
    """Server-wide defaults, overridden per service and per handler by the manifest."""

    retry: RetryPolicy = RetryPolicy()
    journal_retention_ms: int = DAY_MS
    idempotency_retention_ms: int = DAY_MS
    workflow_completion_retention_ms: int = DAY_MS
    inactivity_timeout_ms: int = 60_000
    abort_timeout_ms: int = 600_000


@dataclass(frozen=True, slots=True)
class HandlerInfo:
    name: str
    handler_type: HandlerType | None
    public: bool
    retry: RetryPolicy
    journal_retention_ms: int
    idempotency_retention_ms: int
    workflow_completion_retention_ms: int
    inactivity_timeout_ms: int
    abort_timeout_ms: int
    enable_lazy_state: bool
    input_content_type: str | None = None
    input_required: bool = False
    output_content_type: str = "application/json"
    definition: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    service_type: ServiceType
    deployment_id: str
    revision: int
    public: bool
    handlers: Mapping[str, HandlerInfo]
    definition: Mapping[str, Any] = field(default_factory=dict)


def _opt_ms(source: Mapping[str, Any], name: str, fallback: int) -> int:
    value = source.get(name)
    return int(value) if isinstance(value, int | float) else fallback


def _retry(source: Mapping[str, Any], base: RetryPolicy) -> RetryPolicy:
    """Applies the manifest's retryPolicy* fields (discovery v4) on top of `base`."""
    max_attempts = source.get("retryPolicyMaxAttempts", base.max_attempts)
    on_max = source.get("retryPolicyOnMaxAttempts")
    return RetryPolicy(
        initial_interval_ms=_opt_ms(source, "retryPolicyInitialInterval", base.initial_interval_ms),
        factor=float(source.get("retryPolicyExponentiationFactor", base.factor)),
        max_interval_ms=_opt_ms(source, "retryPolicyMaxInterval", base.max_interval_ms),
        max_attempts=int(max_attempts) if isinstance(max_attempts, int) else base.max_attempts,
        on_max_attempts=str(on_max).lower() if isinstance(on_max, str) else base.on_max_attempts,
    )


def _handler_type(value: object, service_type: ServiceType) -> HandlerType | None:
    if isinstance(value, str):
        return HandlerType(value)
    # Restate's defaults: object handlers are exclusive unless declared shared; a workflow
    # handler without a type is a shared one (only `run` is declared WORKFLOW).
    if service_type is ServiceType.VIRTUAL_OBJECT:
        return HandlerType.EXCLUSIVE
    if service_type is ServiceType.WORKFLOW:
        return HandlerType.SHARED
    return None


def build_service(row: ServiceRow, defaults: Defaults) -> ServiceInfo:
    definition: dict[str, Any] = json.loads(row.definition)
    service_retry = _retry(definition, defaults.retry)
    service_public = not bool(definition.get("ingressPrivate", False)) and row.public
    handlers: dict[str, HandlerInfo] = {}
    for h in definition.get("handlers", []):
        name = str(h["name"])
        input_desc = h.get("input") or {}
        output_desc = h.get("output") or {}
        handlers[name] = HandlerInfo(
            name=name,
            handler_type=_handler_type(h.get("ty"), row.service_type),
            public=service_public and not bool(h.get("ingressPrivate", False)),
            retry=_retry(h, service_retry),
            journal_retention_ms=_opt_ms(
                h,
                "journalRetention",
                _opt_ms(definition, "journalRetention", defaults.journal_retention_ms),
            ),
            idempotency_retention_ms=_opt_ms(
                h,
                "idempotencyRetention",
                _opt_ms(definition, "idempotencyRetention", defaults.idempotency_retention_ms),
            ),
            workflow_completion_retention_ms=_opt_ms(
                h,
                "workflowCompletionRetention",
                _opt_ms(
                    definition,
                    "workflowCompletionRetention",
                    defaults.workflow_completion_retention_ms,
                ),
            ),
            inactivity_timeout_ms=_opt_ms(
                h,
                "inactivityTimeout",
                _opt_ms(definition, "inactivityTimeout", defaults.inactivity_timeout_ms),
            ),
            abort_timeout_ms=_opt_ms(
                h, "abortTimeout", _opt_ms(definition, "abortTimeout", defaults.abort_timeout_ms)
            ),
            enable_lazy_state=bool(
                h.get("enableLazyState", definition.get("enableLazyState", False))
            ),
            input_content_type=input_desc.get("contentType"),
            input_required=bool(input_desc.get("required", False)),
            output_content_type=str(output_desc.get("contentType", "application/json")),
            definition=h,
        )
    return ServiceInfo(
        name=row.name,
        service_type=row.service_type,
        deployment_id=row.deployment_id,
        revision=row.revision,
        public=service_public,
        handlers=handlers,
        definition=definition,
    )


class Registry:
    """An immutable snapshot of what is registered; replaced as a whole on every change."""

    def __init__(
        self,
        deployments: Iterable[DeploymentRow] = (),
        services: Iterable[ServiceRow] = (),
        defaults: Defaults | None = None,
    ) -> None:
        self.defaults = defaults or Defaults()
        self.deployments: dict[str, DeploymentRow] = {d.id: d for d in deployments}
        self.services: dict[str, ServiceInfo] = {
            s.name: build_service(s, self.defaults) for s in services
        }

    def service(self, name: str) -> ServiceInfo | None:
        return self.services.get(name)

    def handler(self, service: str, handler: str) -> HandlerInfo | None:
        info = self.services.get(service)
        return None if info is None else info.handlers.get(handler)

    def deployment(self, deployment_id: str) -> DeploymentRow | None:
        return self.deployments.get(deployment_id)

    def deployment_for(self, service: str) -> DeploymentRow | None:
        """The deployment new invocations of `service` go to (its latest registration)."""
        info = self.services.get(service)
        return None if info is None else self.deployments.get(info.deployment_id)

    def service_names(self) -> list[str]:
        return sorted(self.services)
