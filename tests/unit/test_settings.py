from lab.settings import Settings


def test_defaults_bind_loopback_and_use_the_local_broker():
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert settings.management_url == "http://guest:guest@127.0.0.1:15672"


def test_environment_then_overrides():
    env = {"RABBITLENS_PORT": "6001", "RABBITLENS_AMQP_URL": "amqp://u:p@b:5673/v", "RABBITLENS_HOST": ""}
    settings = Settings.from_env(env)
    assert settings.port == 6001
    assert settings.host == "127.0.0.1"
    assert settings.management_url == "http://u:p@b:15672"
    assert Settings.from_env(env, port=7000, host=None).port == 7000


def test_explicit_management_url_wins():
    settings = Settings.from_env({"RABBITLENS_MANAGEMENT_URL": "http://x:y@m:1"})
    assert settings.management_url == "http://x:y@m:1"
