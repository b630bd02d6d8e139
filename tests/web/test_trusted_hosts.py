"""Each app answers only to its own host names when they are configured (deploy/ sets its
onion address), so that a local process or a DNS-rebinding page cannot reach it under
another name; unconfigured (the embedded default), any Host is served."""

from __future__ import annotations

from dataclasses import replace

from tipbox.config import Config

from .conftest import FACTORIES

ONION = "exampleexampleexampleexampleexampleexampleexampleexample.onion"


def test_env_lists_become_config() -> None:
    config = Config.from_env(
        {
            "TIPBOX_SOURCE_TRUSTED_HOSTS": f" {ONION} , ,localhost",
            "TIPBOX_JOURNALIST_TRUSTED_HOSTS": "journalists.onion",
        }
    )
    assert config.source_trusted_hosts == (ONION, "localhost")
    assert config.journalist_trusted_hosts == ("journalists.onion",)
    assert Config.from_env({}).source_trusted_hosts == ()


def test_only_the_configured_host_is_served(app_kind: str, web_config: Config) -> None:
    if app_kind == "source":
        narrowed = replace(web_config, source_trusted_hosts=(ONION,))
    else:
        narrowed = replace(web_config, journalist_trusted_hosts=(ONION,))
    app = FACTORIES[app_kind](narrowed)
    client = app.test_client()
    path = "/healthz" if app_kind == "journalist" else "/"
    assert client.get(path, headers={"Host": ONION}).status_code == 200
    for other in ("localhost", "127.0.0.1:8081", "evil.example", f"{ONION}.evil.example"):
        assert client.get(path, headers={"Host": other}).status_code == 400, other
    open_app = FACTORIES[app_kind](web_config)
    assert open_app.test_client().get(path, headers={"Host": "anything"}).status_code == 200
