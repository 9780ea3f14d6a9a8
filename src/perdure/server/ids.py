"""Identifiers and seeds for the server: the production `IdSource` of the partition."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from perdure.protocol.ids import AwakeableId, InvalidId, InvocationId
from perdure.server.storage.api import HandlerType, Target


class RandomIds:
    """Restate-shaped ids: keyed and idempotent invocations get deterministic ids."""

    def __init__(
        self,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._random = random_bytes
        self._clock_ms = clock_ms

    def invocation_id(self, target: Target, idempotency_key: str | None) -> str:
        return InvocationId.generate(
            target.service,
            target.handler,
            key=target.key if target.is_keyed else None,
            idempotency_key=idempotency_key,
            workflow_run=target.handler_type is HandlerType.WORKFLOW and idempotency_key is None,
            now_ms=self._clock_ms(),
            random_bytes=self._random,
        ).to_str()

    def invocation_id_bytes(self, invocation_id: str) -> bytes:
        return InvocationId.parse(invocation_id).to_bytes()

    def random_seed(self) -> int:
        return int.from_bytes(self._random(8), "big")

    def parse_awakeable(self, awakeable_id: str) -> tuple[str, int] | None:
        try:
            parsed = AwakeableId.parse(awakeable_id)
        except InvalidId:
            return None
        return parsed.invocation_id.to_str(), parsed.index
