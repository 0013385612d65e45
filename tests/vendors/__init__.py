"""Vendor tests: one module per hook, each against its recorded payloads over the replay server."""

from __future__ import annotations

import copy
from collections.abc import Callable

from tests.conftest import recording


def with_one_item_broken(replay, hook, slug: str, payload: str, mutate: Callable[[dict], object]):
    """(batch of the recording, batch with `mutate(body)` applied to the payload), both over HTTP."""
    whole = hook(replay).fetch_batch()
    body = copy.deepcopy(recording(slug, payload))
    mutate(body)
    replay.put(slug, payload, body)
    return whole, hook(replay).fetch_batch()


def lost(whole, broken) -> set[str]:
    """offer_ids of `whole` missing from `broken`; every other offer must be unchanged."""
    assert _values(broken) <= _values(whole), "offers of untouched items changed"
    return {o.offer_id for o in whole.offers} - {o.offer_id for o in broken.offers}


def _values(batch) -> set[str]:
    return {o.model_dump_json(exclude={"observed_at"}) for o in batch.offers}


def by_id(batch) -> dict:
    """A batch's offers by offer_id."""
    return {o.offer_id: o for o in batch.offers}
