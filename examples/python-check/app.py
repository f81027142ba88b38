"""JsonStatus: a health-check plugin in Python (componentize-py, world `health-check`).

The check's argument is a URL. The check is healthy when a GET through the host's
`http.get` import answers 2xx with a JSON object whose `status` field is "ok", e.g.
`{"status": "ok", "version": "1.2"}`. Anything else is unhealthy, with the reason.

Settings (plugins.toml `[plugins.<name>.settings]`):
  field  - the JSON field to look at (default "status")
  expect - the value that means healthy (default "ok")

Grants: it needs `http` for the hosts it checks, e.g. `grants = { http = ["127.0.0.1:*"] }`.
Build: scripts/build-examples.sh (componentize-py -d wit -w health-check componentize app).
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.exports import health
from wit_world.imports import http, log

SETTINGS = {"field": "status", "expect": "ok"}


class Lifecycle(wit_world.exports.Lifecycle):
    def configure(self, settings):
        for key, value in settings:
            if key not in SETTINGS:
                raise Err(f"unknown setting `{key}` (known: {', '.join(SETTINGS)})")
            SETTINGS[key] = value


class Health(wit_world.exports.Health):
    def check(self, req):
        url = req.args.strip()
        if not url:
            raise Err("JsonStatus needs a URL as its argument")
        request = http.Request(url=url, headers=[("Accept", "application/json")],
                               timeout_ms=req.timeout_ms, max_redirects=10)
        try:
            resp = http.get(request)
        except Err as e:
            error = e.value
            if isinstance(error, (http.Error_Denied, http.Error_InvalidUrl)):
                raise Err(f"GET {url}: {error.value}")
            if isinstance(error, http.Error_Timeout):
                return unhealthy(f"GET {url}: no answer within {req.timeout_ms} ms")
            return unhealthy(f"GET {url}: {error.value}")
        if not 200 <= resp.status < 300:
            return unhealthy(f"HTTP {resp.status} from {resp.final_url}")
        try:
            doc = json.loads(resp.body)
        except ValueError as e:
            return unhealthy(f"not JSON: {e}")
        field, expect = SETTINGS["field"], SETTINGS["expect"]
        got = doc.get(field) if isinstance(doc, dict) else None
        if got != expect:
            log.log(log.Level.DEBUG, f"{url}: {field}={got!r}")
            return unhealthy(f"{field} is {got!r}, want {expect!r}")
        return health.CheckResult(status=health.CheckStatus.HEALTHY, message=f"{field}={expect}")


def unhealthy(message):
    return health.CheckResult(status=health.CheckStatus.UNHEALTHY, message=message)
