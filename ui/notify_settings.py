"""The Account page's "Notify me when a batch ends": a webhook address, a test send, and
the signing secret (shown once when made; a new one can be made at any time)."""

from __future__ import annotations

import streamlit as st

from phone_core import ui_api
from phone_core.errors import PhoneError
from ui import common, labels

# Widget keys.
FORM = "notify_form"
URL = "notify_url"
SAVE = "notify_save"
TEST = "notify_test"
NEW_SECRET_BUTTON = "notify_new_secret_button"
# Page state.
SECRET = "notify_secret_once"  # a secret just made: shown on this run only

STATE_WORDS = {"delivered": "Delivered", "pending": "Being sent", "failed": "Not delivered"}


def _save(user: str, url: str) -> None:
    try:
        secret = ui_api.save_webhook(user, url)
    except PhoneError as exc:
        st.error(common.explain(exc))
        return
    if secret:
        st.session_state[SECRET] = secret
    if url.strip():
        st.success("Saved. When a batch of yours ends, a message is posted to this address.")
    else:
        st.success("Saved. Notifications are off.")


def _show_secret_once() -> None:
    secret = st.session_state.pop(SECRET, None)
    if secret:
        st.warning(
            "Your signing secret is below. Copy it now into the tool that receives the "
            "notifications: it will not be shown again."
        )
        st.code(secret, language=None)


def _history(user: str) -> None:
    recent = ui_api.recent_notifications(user)
    for n in recent:
        when = labels.when(n.delivered_at or n.created_at)
        tries = labels.count(n.attempts, "try", "tries")
        line = f"{when} UTC · {STATE_WORDS.get(n.state, n.state)} after {tries}"
        if n.state != "delivered" and n.last_error:
            line += f" (last answer: {n.last_error.replace('_', ' ')})"
        st.caption(line)


def section(user: str) -> None:
    st.subheader("Notify me when a batch ends")
    st.caption(
        "Paste the incoming-webhook address of Slack, Microsoft Teams, Zapier or any tool "
        "that accepts a JSON POST. When a batch of yours ends, a short message is posted "
        "there: how many rows got a phone and the credits spent, with a link to your runs "
        "(never a phone number or a name). Leave it empty to turn this off. You also see "
        "a message in the app, on any page, while you are signed in."
    )
    saved = ui_api.webhook_url(user)
    with st.form(FORM):
        url = st.text_input(
            "Webhook address",
            value=saved,
            key=URL,
            max_chars=2000,
            placeholder="https://hooks.slack.com/services/...",
        )
        if st.form_submit_button("Save", key=SAVE):
            _save(user, url)
            saved = ui_api.webhook_url(user)
    if st.button("Send a test notification", key=TEST, disabled=not saved):
        ok, text = ui_api.send_test_notification(user)
        (st.success if ok else st.error)(text)
    has_secret = ui_api.has_notify_secret(user)
    st.caption(
        "Every notification is signed so your receiver can check it came from here: "
        "X-Phone-Timestamp is the time it was sent (Unix seconds) and X-Phone-Signature-256 "
        "is sha256= followed by the HMAC-SHA256, under your signing secret (hex), of the "
        "timestamp, a dot and the raw body. Refuse a timestamp more than 5 minutes old: a "
        "replayed notification is then rejected. (X-Phone-Signature, the HMAC of the body "
        "alone, is still sent for receivers set up before.) X-Phone-Delivery names the "
        "notification: a repeat of one you already had can be dropped. The same secret "
        "signs the webhook_url of your API requests."
    )
    label = "Make a new signing secret" if has_secret else "Make a signing secret"
    if st.button(label, key=NEW_SECRET_BUTTON):
        st.session_state[SECRET] = ui_api.regenerate_notify_secret(user)
        if has_secret:
            st.info("A new signing secret was made; the old one no longer signs anything.")
    _show_secret_once()
    _history(user)
