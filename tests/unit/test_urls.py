from rabbit.urls import management_url_for, redact_url, scrub, url_password, vhost_of


def test_redact_url_drops_the_password_and_keeps_the_user():
    assert redact_url("amqp://guest:guest@127.0.0.1:5672/%2F") == "amqp://guest@127.0.0.1:5672/%2F"


def test_redact_url_handles_encoded_passwords_and_no_port():
    assert redact_url("amqps://bob:p%40ss%3Aw@rabbit.example/prod") == "amqps://bob@rabbit.example/prod"


def test_redact_url_leaves_urls_without_credentials_alone():
    assert redact_url("amqp://127.0.0.1:5672/%2F") == "amqp://127.0.0.1:5672/%2F"


def test_redact_url_keeps_ipv6_brackets():
    assert redact_url("amqp://u:secret@[::1]:5672/") == "amqp://u@[::1]:5672/"


def test_url_password_is_decoded():
    assert url_password("amqp://bob:p%40ss@h/") == "p@ss"
    assert url_password("amqp://h/") is None


def test_vhost_of_default_and_named():
    assert vhost_of("amqp://h:5672/%2F") == "/"
    assert vhost_of("amqp://h:5672/") == "/"
    assert vhost_of("amqp://h:5672") == "/"
    assert vhost_of("amqp://h:5672/lab%2Fone") == "lab/one"


def test_management_url_uses_the_amqp_host_and_credentials_on_15672():
    assert management_url_for("amqp://guest:guest@127.0.0.1:5672/%2F") == "http://guest:guest@127.0.0.1:15672"
    assert management_url_for("amqps://u:p@broker:5671/v", port=443) == "https://u:p@broker:443"


def test_scrub_replaces_plain_and_url_encoded_secrets():
    text = "login bob:p@ss failed; url amqp://bob:p%40ss@h/"
    assert scrub(text, ["p@ss"]) == "login bob:*** failed; url amqp://bob:***@h/"
    assert scrub("nothing here", ["", "zzz"]) == "nothing here"
