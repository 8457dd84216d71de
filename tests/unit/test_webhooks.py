"""Webhook URLs are checked like any server-side fetch, bodies are signed, and the
notification text says how a batch ended in plain words, without personal data."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from phone_core import notify, webhooks
from phone_core.models import RunCounts, RunState
from phone_core.settings import Settings
from phone_core.webhooks import Delivery, UnsafeUrl, check_url
from tests.conftest import free_port
from tests.fakes.webhook import FakeWebhook


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"text":"hi"}'
    sig = webhooks.sign("whsec_abc", body)
    # Recomputed independently, as a receiver would.
    import hashlib
    import hmac

    assert sig == "sha256=" + hmac.new(b"whsec_abc", body, hashlib.sha256).hexdigest()
    assert webhooks.verify("whsec_abc", body, sig)
    assert not webhooks.verify("whsec_other", body, sig)
    assert not webhooks.verify("whsec_abc", body + b" ", sig)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://hooks.example.com/x", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("hooks.slack.com/services/x", "scheme"),
        ("https://", "url"),
        ("https://user:pw@8.8.8.8/hook", "url"),
        ("https://8.8.8.8:99999/hook", "url"),
        ("https://8.8.8.8/" + "x" * 2100, "url"),
        ("http://127.0.0.1:8080/hook", "private_address"),
        ("http://localhost/hook", "private_address"),
        ("http://10.1.2.3/hook", "private_address"),
        ("http://192.168.1.10/hook", "private_address"),
        ("http://172.16.0.1/hook", "private_address"),
        ("http://169.254.169.254/latest/meta-data", "private_address"),
        ("http://100.64.0.1/hook", "private_address"),
        ("http://0.0.0.0/hook", "private_address"),
        ("http://[::1]/hook", "private_address"),
        ("http://[::ffff:127.0.0.1]/hook", "private_address"),
        ("http://[fe80::1]/hook", "private_address"),
        ("http://224.0.0.1/hook", "private_address"),
    ],
)
def test_unsafe_urls_are_refused_with_a_reason(url: str, code: str) -> None:
    with pytest.raises(UnsafeUrl) as err:
        check_url(url, allow_private=False)
    assert err.value.code == code
    assert str(err.value)  # a sentence for the user


def test_public_and_allowed_private_urls_pass() -> None:
    assert check_url("  https://8.8.8.8/hooks/abc?x=1  ", allow_private=False) == (
        "https://8.8.8.8/hooks/abc?x=1"
    )
    assert check_url("http://127.0.0.1:9000/hook", allow_private=True) == (
        "http://127.0.0.1:9000/hook"
    )
    assert check_url("", allow_private=False) == ""  # notifications off


def test_a_private_address_is_refused_again_at_send_time() -> None:
    with FakeWebhook() as fake:
        result = webhooks.post(fake.url, b"{}", {}, timeout=2, allow_private=False)
        assert result == Delivery(error="private_address")
        assert fake.received == []


def test_post_reports_status_redirects_timeouts_and_dead_receivers() -> None:
    with FakeWebhook(hang_sec=1.0) as fake:
        fake.script(404, "redirect", "hang")
        post = lambda: webhooks.post(  # noqa: E731
            fake.url, b'{"a":1}', {"X-Test": "1"}, timeout=0.3, allow_private=True
        )
        assert post() == Delivery(status=404)
        redirected = post()
        assert redirected == Delivery(status=302) and not redirected.ok
        assert post() == Delivery(error="timeout")
        assert post().ok
        assert [r.path for r in fake.received] == ["/hooks/batch"] * 4  # never /elsewhere
        first = fake.received[0]
        assert first.body == b'{"a":1}' and first.headers["X-Test"] == "1"
        assert first.headers["Content-Type"] == "application/json"
        assert first.headers["Host"].startswith("127.0.0.1:")
    dead = webhooks.post(
        f"http://127.0.0.1:{free_port()}/x", b"{}", {}, timeout=1, allow_private=True
    )
    assert dead == Delivery(error="connection_failed")


def test_a_host_name_is_sent_to_an_address_it_resolves_to() -> None:
    """localhost may resolve to ::1 first while the receiver listens on 127.0.0.1 only:
    the next address is tried; the Host header keeps the name."""
    with FakeWebhook() as fake:
        url = fake.url.replace("127.0.0.1", "localhost")
        assert webhooks.post(url, b"{}", {}, timeout=2, allow_private=True).ok
        assert fake.received[0].headers["Host"] == url.split("/")[2]


def test_delivery_results_in_words() -> None:
    assert Delivery(status=200).describe(5) == "Delivered: the receiver answered HTTP 200."
    assert Delivery(status=404).describe(5) == "Not delivered: the receiver answered HTTP 404."
    assert "timed out" in Delivery(error="timeout").describe(5)
    assert "5 seconds" in Delivery(error="timeout").describe(5)
    assert Delivery(status=500).code == "HTTP 500"
    assert Delivery(error="timeout").code == "timeout"


def _summary(**kw: object) -> notify.BatchSummary:
    base: dict[str, object] = {
        "batch_id": "g1",
        "run_ids": ["r1", "r2"],
        "owner": "ann",
        "label": "leads.csv",
        "state": RunState.COMPLETED,
        "counts": RunCounts(
            total=1000, found=700, cached=100, duplicate=12, duplicate_with_phone=12, not_found=188
        ),
        "credits_spent": 640,
        "finished_at": datetime(2026, 11, 30, 12, 0, 5, 123),
    }
    base.update(kw)
    return notify.BatchSummary(**base)  # type: ignore[arg-type]


def test_summary_text_says_how_the_batch_ended_with_plurals() -> None:
    assert notify.summary_text(_summary()) == (
        "Batch 'leads.csv' finished: 812 of 1,000 rows have a phone, 640 credits spent."
    )
    one = _summary(counts=RunCounts(total=1, found=1), credits_spent=1, label="")
    assert notify.summary_text(one) == (
        "Batch 'Untitled batch' finished: 1 of 1 row has a phone, 1 credit spent."
    )
    assert "stopped at its credit limit" in notify.summary_text(
        _summary(state=RunState.CREDIT_LIMIT_REACHED)
    )
    assert "was cancelled" in notify.summary_text(_summary(state=RunState.CANCELLED))


def test_payload_is_chat_compatible_structured_and_free_of_personal_data() -> None:
    settings = Settings(public_url="https://phones.example.com/")
    body = notify.payload(_summary(label="<!channel> & co"), settings)
    assert body["text"] == (
        "Batch '&lt;!channel&gt; &amp; co' finished: 812 of 1,000 rows have a phone, "
        "640 credits spent. https://phones.example.com/runs"
    )
    assert body["event"] == "batch.finished"
    assert body["run_id"] == "r1" and body["run_ids"] == ["r1", "r2"]
    assert body["label"] == "<!channel> & co"  # structured fields are not chat markup
    assert body["state"] == "completed" and body["credits_spent"] == 640
    assert body["counts"]["rows_with_phone"] == 812 and body["counts"]["total"] == 1000
    assert body["finished_at"] == "2026-11-30T12:00:05Z"
    encoded = json.dumps(body)
    assert "+1" not in encoded and "@" not in encoded
