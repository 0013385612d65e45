"""The daily analytics report (gpubroker.daily, the gpubroker_analytics DAG, GET /api/v1/analytics/daily):
its SQL on pytest-django's PostgreSQL database over offers landed by the real store (offers, price
history, outbox), health checks, gate reports and anomalies inserted as their writers write them, with
exact figures; re-running a day; the DAG as Airflow parses it; the route through the whole ASGI
application (gateway included). The page: tests/test_analytics_page.py."""

from __future__ import annotations

import statistics
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker import cache, daily, store
from gpubroker.schema import Offer
from gpubroker.vendors import VENDORS
from tests.conftest import ROOT
from tests.test_bad_input import named, query_string, texts
from tests.webapp_fixtures import locked

# The report is of yesterday (UTC): the outbox, whose observations give the availability, keeps a day
# for settings.OUTBOX_RETENTION_DAYS (7) after it.
DAY = datetime.now(timezone.utc).date() - timedelta(days=1)
START = datetime.combine(DAY, time(), timezone.utc)
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def at(days: int, hours: float = 0) -> datetime:
    """`days` after the reported day's start (negative: before), plus `hours`."""
    return START + timedelta(days=days, hours=hours)


def offer(provider: str, offer_id: str, price: str, gpu="H100", gpu_count=1, availability="available") -> Offer:
    return Offer(provider=provider, offer_id=offer_id, instance_type=f"{gpu_count}x {gpu}", gpu_model=gpu,
                 gpu_vendor="NVIDIA", gpu_count=gpu_count, gpu_memory_gb=80, price_per_hour=Decimal(price),
                 region="Norway", availability=availability, observed_at=START)  # fmt: skip


def land(pg, provider: str, when: datetime, *offers: Offer) -> None:
    """One landed batch of `provider` observed at `when` (offers it no longer lists vanish)."""
    store.land(pg, provider, [o.model_copy(update={"observed_at": when}) for o in offers], when)


def health(pg, provider: str, *statuses_at: tuple[str, datetime]) -> None:
    for status, when in statuses_at:
        pg.execute("INSERT INTO provider_health (provider, checked_at, status, latency_ms, weight, error)"
                   " VALUES (%s, %s, %s, 120, 1.0, '')", (provider, when, status))  # fmt: skip


def gate(pg, provider: str, outcome: str, when: datetime) -> None:
    pg.execute(
        "INSERT INTO gate_reports (provider, run_at, observed_at, outcome, success, items, rows_in, rows_landed, rows_dropped,"
        " parse_dropped, parse_skipped, gate_dropped, failures, baseline_source, timings)"
        " VALUES (%s, %s, %s, %s, %s, 4, 4, %s, 0, '{}', '{}', '{}', '[]', 'last_good', '{}')",
        (provider, when, when, outcome, outcome != "quarantined", 0 if outcome == "quarantined" else 4),
    )


def anomaly(pg, provider: str, gpu: str, reason: str, when: datetime) -> None:
    pg.execute(
        "INSERT INTO anomalies (event_id, provider, offer_id, gpu, region, price_per_hour, price_per_gpu, reason, observed_at,"
        " detected_at) VALUES (%s, %s, 'x', %s, 'Norway', 9, 9, %s, %s, %s)",
        (uuid.uuid4(), provider, gpu, reason, when, when),
    )


@pytest.fixture
def market(pg):
    """A week of two providers. vastai lists H100s h1 (1 GPU), h2 (8 GPUs) and A100 a1 from 7 days
    before; yesterday at 06:00 h1 and h2 get cheaper and h3 appears, at 18:00 h2 and a1 vanish, and
    at midnight (the next day's first instant) h1 gets cheaper again.
    lambda lists H100 l1 from the day before, sold out then, available yesterday. Yesterday vastai had
    5 health checks (3 healthy), 3 syncs (1 quarantined) and an approval; lambda 2 healthy checks and
    a landed sync. Anomalies: 2 zscore of vastai's H100, 1 drop of lambda's, 1 zscore of an L4 no one
    lists; and some outside the day (just before it, at its end) that must not count."""
    h1, h2, a1 = offer("vastai", "h1", "2.00"), offer("vastai", "h2", "24.00", gpu_count=8), offer("vastai", "a1", "1.50", "A100")
    land(pg, "vastai", at(-7, 12), h1, h2, a1)
    land(pg, "vastai", at(-1, 12), offer("vastai", "h1", "2.20"), h2, a1)
    land(pg, "lambda", at(-1, 10), offer("lambda", "l1", "2.40", availability="unavailable"))
    h3 = offer("vastai", "h3", "3.00", availability="limited")
    land(pg, "vastai", at(0, 6), offer("vastai", "h1", "1.80"), offer("vastai", "h2", "20.00", gpu_count=8),
         offer("vastai", "a1", "1.50", "A100", availability="unknown"), h3)  # fmt: skip
    land(pg, "lambda", at(0, 9), offer("lambda", "l1", "2.40"))
    land(pg, "vastai", at(0, 18), offer("vastai", "h1", "1.80"), h3)
    land(pg, "vastai", at(1), offer("vastai", "h1", "1.00"), h3)  # at the day's end: the next day's
    health(pg, "vastai", ("healthy", at(0, 0)), ("healthy", at(0, 1)), ("healthy", at(0, 2)), ("degraded", at(0, 3)),
           ("down", at(0, 23.99)), ("down", at(0, -0.01)), ("down", at(1)))  # fmt: skip
    health(pg, "lambda", ("healthy", at(0, 9)), ("healthy", at(0, 10)))
    for outcome, hours in (("landed", 6), ("quarantined", 12), ("landed", 18), ("approved", 13)):
        gate(pg, "vastai", outcome, at(0, hours))
    gate(pg, "vastai", "quarantined", at(-1, 23))
    gate(pg, "lambda", "landed", at(0, 9))
    for provider, gpu, reason, when in (("vastai", "H100", "zscore", at(0, 6)), ("vastai", "H100", "zscore", at(0, 18)),
                                        ("lambda", "H100", "drop", at(0, 9)), ("vastai", "L4", "zscore", at(0, 7)),
                                        ("vastai", "H100", "drop", at(0, -1)), ("lambda", "H100", "zscore", at(1))):  # fmt: skip
        anomaly(pg, provider, gpu, reason, when)


def rows(pg, table: str, key: str) -> dict[str, dict]:
    cur = pg.execute(f"SELECT * FROM {table} WHERE day = %s ORDER BY {key}", (DAY,))
    names = [c.name for c in cur.description]
    return {r[names.index(key)]: {n: v for n, v in zip(names, r) if n not in ("id", "day", "generated_at", key)}
            for r in cur.fetchall()}  # fmt: skip


GPUS = {
    # H100 closes at 1.80 (h1), 2.50 (h2: 20.00 / 8), 3.00 (h3), 2.40 (l1); the day before at 2.20, 3.00, 2.40
    # (h3 not yet); 7 days before at 2.00, 3.00 (l1 not yet)
    "H100": {"offers": 4, "cheapest_price_per_gpu": Decimal("1.8000"), "cheapest_provider": "vastai", "cheapest_offer_id": "h1",
             "median_price_per_gpu": Decimal("2.4500"), "cheapest_change_1d": Decimal("-18.18"),
             "cheapest_change_7d": Decimal("-10.00"), "median_change_1d": Decimal("2.08"), "median_change_7d": Decimal("-2.00"),
             "anomalies_zscore": 2, "anomalies_drop": 1},
    "A100": {"offers": 1, "cheapest_price_per_gpu": Decimal("1.5000"), "cheapest_provider": "vastai", "cheapest_offer_id": "a1",
             "median_price_per_gpu": Decimal("1.5000"), "cheapest_change_1d": Decimal("0.00"),
             "cheapest_change_7d": Decimal("0.00"), "median_change_1d": Decimal("0.00"), "median_change_7d": Decimal("0.00"),
             "anomalies_zscore": 0, "anomalies_drop": 0},
    "L4": {"offers": 0, "cheapest_price_per_gpu": None, "cheapest_provider": None, "cheapest_offer_id": None,
           "median_price_per_gpu": None, "cheapest_change_1d": None, "cheapest_change_7d": None, "median_change_1d": None,
           "median_change_7d": None, "anomalies_zscore": 1, "anomalies_drop": 0},
}  # fmt: skip
NOTHING = {"offers": 0, "observations": 0, "observed_available": 0, "observed_unavailable": 0, "availability_percent": None,
           "health_checks": 0, "healthy_checks": 0, "degraded_checks": 0, "down_checks": 0, "healthy_percent": None,
           "syncs": 0, "syncs_landed": 0, "syncs_quarantined": 0, "landed_percent": None, "anomalies": 0}  # fmt: skip
PROVIDERS = {
    # vastai observed 4 offers at 06:00 (h3 limited, a1 unknown), 2 at 18:00, and h2 and a1 vanishing then: 5 of
    # the 7 stating an availability were available or limited
    "vastai": {"offers": 4, "observations": 8, "observed_available": 5, "observed_unavailable": 2,
               "availability_percent": Decimal("71.43"), "health_checks": 5, "healthy_checks": 3, "degraded_checks": 1,
               "down_checks": 1, "healthy_percent": Decimal("60.00"), "syncs": 3, "syncs_landed": 2, "syncs_quarantined": 1,
               "landed_percent": Decimal("66.67"), "anomalies": 3},
    "lambda": {"offers": 1, "observations": 1, "observed_available": 1, "observed_unavailable": 0,
               "availability_percent": Decimal("100.00"), "health_checks": 2, "healthy_checks": 2, "degraded_checks": 0,
               "down_checks": 0, "healthy_percent": Decimal("100.00"), "syncs": 1, "syncs_landed": 1, "syncs_quarantined": 0,
               "landed_percent": Decimal("100.00"), "anomalies": 1},
}  # fmt: skip


def test_each_gpu_model_gets_its_closing_cheapest_and_median_with_1_and_7_day_changes_and_anomalies(pg, market):
    written = daily.build(pg, DAY)
    assert written == daily.Written(DAY, gpus=3, providers=len(VENDORS), observations_kept=True)
    assert rows(pg, "daily_gpu_prices", "gpu") == GPUS


def test_each_provider_gets_its_availability_health_and_syncs_over_the_day(pg, market):
    daily.build(pg, DAY)
    providers = rows(pg, "daily_provider_stats", "provider")
    assert set(providers) == set(VENDORS)  # every provider of the vendor table, even those with nothing that day
    assert {p: providers[p] for p in PROVIDERS} == PROVIDERS
    assert all(figures == NOTHING for p, figures in providers.items() if p not in PROVIDERS)


def test_re_running_a_day_replaces_its_report(pg, market):
    def made() -> list[tuple]:
        return pg.execute("SELECT count(*), count(DISTINCT generated_at), min(generated_at) FROM daily_gpu_prices"
                          " UNION ALL SELECT count(*), count(DISTINCT generated_at), min(generated_at) FROM daily_provider_stats").fetchall()  # fmt: skip

    daily.build(pg, DAY)
    (_, _, first), _ = made()
    health(pg, "lambda", ("down", at(0, 11)))
    anomaly(pg, "vastai", "A100", "drop", at(0, 20))
    daily.build(pg, DAY)
    (gpus, gpu_runs, again), (providers, provider_runs, also) = made()
    assert (gpus, providers, gpu_runs, provider_runs) == (3, len(VENDORS), 1, 1)  # one report of the day, made once
    assert again == also > first
    lam = rows(pg, "daily_provider_stats", "provider")["lambda"]
    assert (lam["health_checks"], lam["healthy_percent"]) == (3, Decimal("66.67"))
    assert rows(pg, "daily_gpu_prices", "gpu")["A100"]["anomalies_drop"] == 1


def test_a_day_the_outbox_no_longer_holds_whole_has_no_availability_but_everything_else(pg, market):
    written = daily.build(pg, DAY, now=at(8))  # made 8 days later: the outbox keeps 7
    assert not written.observations_kept
    unknown = dict.fromkeys(("observations", "observed_available", "observed_unavailable", "availability_percent"))
    assert rows(pg, "daily_provider_stats", "provider")["vastai"] == PROVIDERS["vastai"] | unknown
    assert rows(pg, "daily_gpu_prices", "gpu") == GPUS


def test_a_day_that_has_not_begun_is_refused_and_nothing_written(pg):
    with pytest.raises(daily.NotADay, match="has not begun"):
        daily.build(pg, DAY + timedelta(days=2))
    assert pg.execute("SELECT count(*) FROM daily_provider_stats").fetchone()[0] == 0


def per_gpu(price: Decimal, gpus: int) -> Decimal:
    return (price / gpus).quantize(Decimal("0.0001"), ROUND_HALF_UP)


@HYPOTHESIS
@given(st.lists(st.tuples(st.decimals(min_value="0.01", max_value="500", places=4), st.sampled_from([1, 2, 3, 4, 8])),
                min_size=1, max_size=12))  # fmt: skip
def test_cheapest_and_median_are_the_minimum_and_median_of_the_closing_prices_per_gpu(pg, listed):
    pg.execute("TRUNCATE offers, price_history, event_outbox, daily_gpu_prices, daily_provider_stats")
    land(pg, "runpod", at(0, 12), *(offer("runpod", f"o{i}", str(p), gpu_count=n) for i, (p, n) in enumerate(listed)))
    daily.build(pg, DAY)
    prices = [per_gpu(p, n) for p, n in listed]
    h100 = rows(pg, "daily_gpu_prices", "gpu")["H100"]
    assert h100["offers"] == len(listed) and h100["cheapest_price_per_gpu"] == min(prices)
    assert h100["median_price_per_gpu"] == statistics.median(prices).quantize(Decimal("0.0001"), ROUND_HALF_UP)
    assert h100["cheapest_change_1d"] is None and h100["median_change_7d"] is None  # nothing listed before


changes = st.one_of(st.none(), st.decimals(min_value=-100, max_value=1000, places=2))


@given(st.lists(st.tuples(st.text("ABCDEFGH", min_size=1, max_size=3), changes), unique_by=lambda g: g[0], max_size=12))
def test_the_movers_are_the_largest_median_changes_largest_first(gpus):
    rows_ = [{"gpu": name, "median_change_1d": change} for name, change in gpus]
    movers = daily.movers(rows_)
    moved = [r for r in rows_ if r["median_change_1d"]]
    assert len(movers) == min(daily.MOVERS, len(moved)) and all(m in moved for m in movers)
    sizes = [abs(m["median_change_1d"]) for m in movers]
    assert sizes == sorted(sizes, reverse=True)
    assert all(abs(r["median_change_1d"]) <= sizes[-1] for r in moved if r not in movers)


@given(st.dates())
def test_any_day_written_yyyy_mm_dd_is_read_back(day):
    assert daily.parse_day(day.isoformat()) == day


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "2026-1-05", "20261201", "2026-W48-1", "1700000000",
                                  "２０２６-１２-０１", "2026-12-01T00:00:00", " 2026-12-01", "2026-12-01\n", "", "\x00"])  # fmt: skip
def test_anything_but_a_calendar_day_written_yyyy_mm_dd_is_refused(text):
    with pytest.raises(daily.NotADay, match="give a day as YYYY-MM-DD|not a day of the calendar"):
        daily.parse_day(text)


def test_the_dag_step_reports_on_the_day_before_its_run_and_retires_cached_answers(pg_url, market, isolated_redis, monkeypatch):
    from gpubroker import settings
    from gpubroker_provider import sync

    monkeypatch.setattr(settings, "DATABASE_URL", pg_url)
    version = cache.bump_version(isolated_redis)
    assert sync.daily_report(None, at(1, 0.25)) == {"day": DAY.isoformat(), "gpus": 3, "providers": len(VENDORS),
                                                    "observations_kept": True}  # fmt: skip
    assert int(isolated_redis.get(cache.VERSION)) == version + 1
    assert sync.daily_report((DAY - timedelta(days=1)).isoformat(), at(1))["day"] == (DAY - timedelta(days=1)).isoformat()
    with pytest.raises(daily.NotADay):
        sync.daily_report("yesterday", at(1))


# --- the DAG --------------------------------------------------------------------------------------
def test_the_analytics_dag_runs_daily_after_midnight_and_takes_a_date():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "gpubroker_analytics.py"))
    assert bag.import_errors == {}
    dag = bag.dags["gpubroker_analytics"]
    assert dag.schedule == "15 0 * * *" and dag.timetable.can_be_scheduled  # daily, 00:15 UTC
    assert (dag.max_active_runs, dag.catchup) == (1, False)
    assert dag.params["date"] is None  # the day before the run, unless given
    assert dag.params.get_param("date").schema["pattern"] == "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    assert [t.task_id for t in dag.tasks] == ["daily_report"] and dag.tasks[0].retries >= 2


# --- the API --------------------------------------------------------------------------------------
@pytest.fixture
async def reported(api, pg, market):
    """The report of the day, and of the day 3 days before it (nothing listed then but the old batches)."""
    daily.build(pg, DAY)
    daily.build(pg, DAY - timedelta(days=3))
    return api


def as_json(figures: dict) -> dict:
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in figures.items()}


async def test_the_api_answers_a_day_s_report_with_exact_figures(reported):
    response = await reported.get("/api/v1/analytics/daily", params={"date": DAY.isoformat()})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["date"] == DAY.isoformat() and report["previous_date"] == (DAY - timedelta(days=3)).isoformat()
    assert report["next_date"] is None
    assert [g["gpu"] for g in report["gpus"]] == ["A100", "H100", "L4"]
    assert {g.pop("gpu"): g for g in report["gpus"]} == {gpu: as_json(f) for gpu, f in GPUS.items()}
    assert [(m["gpu"], m["median_change_1d"]) for m in report["movers"]] == [("H100", 2.08)]  # A100 did not move
    providers = {p.pop("provider"): p for p in report["providers"]}
    assert providers["vastai"] == as_json(PROVIDERS["vastai"]) | {"name": VENDORS["vastai"].name}
    assert len(providers) == len(VENDORS)
    assert report["anomalies"] == {"zscore": 3, "drop": 1}
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_without_a_date_the_api_answers_the_latest_report(reported):
    latest = (await reported.get("/api/v1/analytics/daily")).json()
    assert latest["date"] == DAY.isoformat()
    older = (await reported.get("/api/v1/analytics/daily", params={"date": latest["previous_date"]})).json()
    assert (older["previous_date"], older["next_date"]) == (None, DAY.isoformat())
    assert [g["gpu"] for g in older["gpus"]] == ["A100", "H100"] and older["anomalies"] == {"zscore": 0, "drop": 0}


async def test_a_day_without_a_report_is_a_404_saying_so(reported, api):
    missing = await api.get("/api/v1/analytics/daily", params={"date": "2026-01-15"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no daily report for 2026-01-15: the gpubroker_analytics DAG writes one per day "
                                        '(trigger it with {"date": "2026-01-15"} for this one)'}  # fmt: skip


async def test_with_no_report_at_all_the_api_says_none_was_written_yet(api):
    response = await api.get("/api/v1/analytics/daily")
    assert response.status_code == 404 and response.json()["detail"].startswith("no daily report yet")


@pytest.mark.parametrize("text", ["2026-02-30", "26-12-01", "2026-12-1", "yesterday", "1700000000", "٢٠٢٦-١٢-٠١", "2026-12-01\x00"])
async def test_a_malformed_date_is_a_422_naming_it(api, text):
    response = await api.get("/api/v1/analytics/daily", params={"date": text})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["parameter"] == "date" and "day" in response.json()["detail"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
async def test_any_date_gets_a_404_or_a_422_naming_it(api, text):
    response = await api.get(f"/api/v1/analytics/daily?{query_string({'date': text})}")
    assert response.status_code in (404, 422), response.text
    named(response, {"date"})


async def test_the_route_goes_through_the_gateway_limited_by_plan_and_documented(webapp):
    response = await webapp.get("/api/v1/analytics/daily")  # no key: the free plan
    assert response.headers["ratelimit-limit"] == "10" and response.headers["ratelimit-remaining"] == "9"
    document = (await webapp.get("/api/v1/openapi.json")).json()
    route = document["paths"]["/api/v1/analytics/daily"]["get"]
    assert {"200", "404", "422", "429", "503"} <= set(route["responses"])
    assert route["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DailyReport"}
    assert [(p["name"], p["in"]) for p in route["parameters"]] == [("date", "query")]
    report = document["components"]["schemas"]["DailyReport"]["properties"]
    assert {"gpus", "movers", "providers", "anomalies", "previous_date", "next_date"} <= set(report)


async def test_with_the_report_tables_locked_the_api_answers_503_with_retry_after(reported, pg_url):
    with locked(pg_url, "daily_provider_stats"):
        response = await reported.get("/api/v1/analytics/daily")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "retry shortly" in response.json()["detail"]
