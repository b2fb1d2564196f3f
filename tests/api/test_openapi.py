"""The OpenAPI document: valid 3.1, complete, and true of the live server.

The document (router/api/openapi.py) is checked three ways:

1. it is a valid OpenAPI 3.1 document (schemathesis' bundled 3.1 meta-schema, and
   every Schema Object against JSON Schema 2020-12), every `$ref` resolves, and
   every error is `application/problem+json`;
2. it names every route and method the app registers, and only those;
3. schemathesis drives the live test server from it: no request ever gets a 5xx,
   every response conforms to the document (status, content type, headers, body),
   bodies the request schemas accept are accepted, and bodies they reject are
   rejected -- so the schemas state the rules of bodies.py exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema_rs
import msgpack
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from router.api.auth import PUBLIC_PREFIXES
from router.api.contacts import CONTACT_FIELDS, CUSTOMER_FIELDS
from router.api.openapi import build_document

from .conftest import Api, ApiFactory


@schemathesis.serializer("message/rfc822")
def _rfc822(ctx: Any, value: Any) -> bytes:
    """Raw email bodies: whatever schemathesis generates, sent as bytes."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


PROBLEM = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Examples per operation and mode. OPENAPI_FUZZ_EXAMPLES raises it for a longer hunt;
# OPENAPI_FUZZ_RANDOM=1 draws new examples each run instead of the same ones.
EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "25"))
DERANDOMIZE = not os.environ.get("OPENAPI_FUZZ_RANDOM")


def _msgpackable(value: Any) -> Any:
    """msgpack holds 64-bit integers only: a larger one (invalid data, in negative mode)
    goes as a float, which the API refuses just the same."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float("inf") if abs(value) > 2**1000 else float(value)
    if isinstance(value, dict):
        return {k: _msgpackable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_msgpackable(v) for v in value]
    return value


@schemathesis.serializer("application/msgpack")
def _msgpack(ctx: Any, value: Any) -> bytes:
    return msgpack.packb(_msgpackable(value), use_bin_type=True)


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _schema_validator(doc: dict[str, Any], name: str) -> jsonschema_rs.Validator:
    """A validator for components.schemas[name], with its `$ref`s resolved in `doc`."""
    return jsonschema_rs.Draft202012Validator({**doc, "$ref": f"#/components/schemas/{name}"})


# -- 1. a valid OpenAPI 3.1 document ------------------------------------------------


async def test_the_document_is_served_publicly(make_api: ApiFactory) -> None:
    api = await make_api()
    r = await api.client.get("/openapi.json")  # no token
    assert r.status == 200 and r.content_type == "application/json"
    assert await r.json() == build_document()


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = build_document()
    assert doc["openapi"].startswith("3.1.")
    # the official OpenAPI 3.1 schema, as schemathesis bundles it
    schemathesis.openapi.from_dict(build_document()).validate()
    # ... which leaves Schema Objects to JSON Schema: check each against 2020-12
    schemas: list[Any] = list(doc["components"]["schemas"].values())
    for _, _, op in _operations(doc):
        schemas += [p["schema"] for p in op.get("parameters", [])]
        for container in (op.get("requestBody", {}), *op["responses"].values()):
            schemas += [m["schema"] for m in container.get("content", {}).values()]
    for schema in schemas:
        jsonschema_rs.meta.validate(schema)
    for name in doc["components"]["schemas"]:
        _schema_validator(doc, name)  # compiles: every $ref in it resolves
    refs = [n["$ref"] for n in _walk(doc) if isinstance(n.get("$ref"), str)]
    assert refs
    for ref in refs:
        assert _resolve(doc, ref) is not None, ref


def test_every_error_is_a_problem_and_only_public_routes_skip_auth() -> None:
    doc = build_document()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert doc["security"] == [{"bearer": []}]
    op_ids = []
    for path, method, op in _operations(doc):
        op_ids.append(op["operationId"])
        public = path.startswith(PUBLIC_PREFIXES) or not path.startswith("/v1/")
        assert ("security" in op and op["security"] == []) == public, (method, path)
        assert public or "401" in op["responses"], (method, path)
        template_params = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        path_params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert template_params == path_params, (method, path)
        for code, response in op["responses"].items():
            if "$ref" in response:
                response = _resolve(doc, response["$ref"])
            content = response["content"]
            if int(code) >= 400:
                assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            elif path.startswith("/v1/webhooks/") and set(content) & {"text/xml", "text/plain"}:
                assert len(content) == 1, (method, path, code)  # TwiML, or Meta's challenge
            elif "text/event-stream" in content:
                assert set(content) == {"text/event-stream"}, (method, path, code)
            elif public:
                assert set(content) == {"application/json"}, (method, path, code)
            else:  # every /v1 answer comes in msgpack too, on request
                assert set(content) == {"application/json", "application/msgpack"}, (path, code)
    assert len(op_ids) == len(set(op_ids))
    schemas = doc["components"]["schemas"]
    assert set(schemas["NewContact"]["properties"]) == set(CONTACT_FIELDS)
    assert set(schemas["NewContact"]["properties"]["customer"]["properties"]) == set(
        CUSTOMER_FIELDS
    )
    problem = schemas["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail"]
    assert problem["additionalProperties"] is True


async def test_unknown_paths_and_methods_get_problems(make_api: ApiFactory) -> None:
    """As the document's description says: 404 and 405 are problems too, and a 405
    names the allowed methods (RFC 9110)."""
    api = await make_api()
    r = await api.client.get("/v2/nothing")
    assert r.status == 404 and r.content_type == PROBLEM
    r = await api.client.delete("/v1/queues", headers=api.auth("admin"))
    assert r.status == 405 and r.content_type == PROBLEM
    assert set(r.headers["Allow"].split(",")) == {"GET", "HEAD"}


# -- 2. every registered route, and only those ----------------------------------------


async def test_the_document_names_every_registered_route(make_api: ApiFactory) -> None:
    api = await make_api()
    registered: set[tuple[str, str]] = set()
    for route in api.client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else None
        assert path is not None, route
        registered.add((route.method.lower(), path))
    documented = {(method, path) for path, method, _ in _operations(build_document())}
    # aiohttp answers HEAD for every GET route (allow_head); HEAD is GET without the
    # body (RFC 9110), so the document lists the GET only. No other HEAD route exists.
    heads = {(m, p) for m, p in registered if m == "head"}
    assert {p for _, p in heads} <= {p for m, p in registered if m == "get"}
    assert not any(m == "head" for m, _ in documented)
    assert registered - heads == documented


# -- 3. the live server, driven from the document ------------------------------------

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


OK = frozenset({200, 201})


@dataclasses.dataclass
class Run:
    """One schemathesis pass over one operation."""

    label: str  # "POST /v1/contacts"
    token: str
    mode: GenerationMode = GenerationMode.POSITIVE
    path_id: str | None = None  # a fixed {id}: an object that exists
    examples: int = EXAMPLES
    patch: Callable[[Any], None] | None = None  # pin tenant-dependent fields
    accepts: frozenset[int] = frozenset()  # positive mode: the statuses valid data gets


def _integer_literals(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> Any:
    """`value` with 2.0 written as 2 where `schema` wants an integer. JSON Schema takes 2.0
    for an integer, so schemathesis may send it; the API takes only the literal 2 (the
    document says so in words)."""
    while "$ref" in schema:
        schema = _resolve(doc, schema["$ref"])
    types = schema.get("type", [])
    if isinstance(value, float) and value.is_integer() and "integer" in types:
        return int(value)
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {
            k: _integer_literals(doc, props.get(k, extra if isinstance(extra, dict) else {}), v)
            for k, v in value.items()
        }
    return value


def _pin_new_contact(rng: random.Random) -> Callable[[Any], None]:
    """Channel and queue must name the tenant's own; the rest is as generated."""

    def patch(case: Any) -> None:
        if isinstance(case.body, dict):
            case.body["channel"] = channel = rng.choice(["voice", "chat"])
            if case.body.get("queue") is not None:
                case.body["queue"] = channel

    return patch


def _pin_agent(rng: random.Random) -> Callable[[Any], None]:
    def patch(case: Any) -> None:
        if isinstance(case.body, dict):
            case.body["pool"] = rng.choice(["inhouse", "near", "off"])
            if isinstance(case.body.get("capacity"), dict):
                levels = list(case.body["capacity"].values())
                channels = ["voice", "chat", "email", "social", "sms"]
                case.body["capacity"] = dict(zip(channels, levels, strict=False))

    return patch


def _pin_transfer(rng: random.Random) -> Callable[[Any], None]:
    def patch(case: Any) -> None:
        case.body = rng.choice([{"queue": "chat"}, {"agent": "a1"}, {"agent": "a3"}])

    return patch


def _short_wait(case: Any) -> None:
    """An agent with no open offer would hold a long poll for `wait` seconds."""
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = min(float(case.query["wait"]), 0.1)


def _plan(known: dict[str, str]) -> list[Run]:
    """Every operation with random input, valid and invalid; then, where a path names
    an object, with one that exists (`known`: label -> id) so the handler gets past
    the lookup."""
    rng = random.Random(7)
    few = EXAMPLES // 2 or 1
    pins = {
        "POST /v1/contacts/{id}/transfer": _pin_transfer(rng),
        "GET /v1/agents/{id}/offers": _short_wait,
    }
    runs: list[Run] = []
    for path, method, op in _operations(build_document()):
        label = f"{method.upper()} {path}"
        # the admin token everywhere; the agent token where only agents may act
        token = "agent" if op.get("x-roles") == ["agent"] else "admin"
        runs.append(Run(label, token))
        if "requestBody" in op or "parameters" in op:
            # invalid input: refused with a 4xx, never accepted, never a 5xx
            runs.append(Run(label, token, GenerationMode.NEGATIVE, examples=few))
        if label in known:
            pin = pins.get(label)
            runs.append(Run(label, token, path_id=known[label], examples=few, patch=pin))
            if token != "agent" and "agent" in op.get("x-roles", []):
                runs.append(Run(label, "agent", path_id=known[label], examples=few, patch=pin))
    runs += [
        Run("POST /v1/contacts", "ingest", patch=_pin_new_contact(rng), accepts=OK),
        Run("POST /v1/contacts", "ingest", GenerationMode.NEGATIVE),
        Run("PUT /v1/agents/{id}", "admin", patch=_pin_agent(rng), accepts=OK),
    ]
    return runs


async def _seed(api: Api) -> dict[str, str]:
    """Agents and contacts in each state an action needs; returns label -> id to use."""

    async def call(method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        r = await api.client.request(method, path, json=body, headers=api.auth(token))
        assert r.status in OK, (path, await r.text())
        out: dict[str, Any] = await r.json()
        return out

    async def contact(channel: str) -> str:
        return str((await call("POST", "/v1/contacts", "ingest", {"channel": channel}))["id"])

    agent = {"pool": "inhouse", "skills": {"billing": 3}, "status": "available"}
    await call("PUT", "/v1/agents/a1", "admin", {**agent, "capacity": {"chat": 2}})
    offered, rejected = await contact("chat"), await contact("chat")
    await call("PUT", "/v1/agents/a2", "admin", {**agent, "capacity": {"voice": 1}})
    wrapping = await contact("voice")
    await call("POST", f"/v1/offers/{wrapping}/accept", "agent")
    done = await call("POST", f"/v1/contacts/{wrapping}/complete", "agent")
    assert done["state"] == "wrap_up"
    await call("PUT", "/v1/agents/a3", "admin", {**agent, "capacity": {"voice": 1}})
    held = await contact("voice")
    await call("POST", f"/v1/offers/{held}/accept", "agent")
    waiting, moving = await contact("chat"), await contact("chat")  # a1 is full
    assert (await call("GET", f"/v1/contacts/{waiting}", "admin"))["state"] == "queued"
    return {
        "GET /v1/contacts/{id}": held,
        "POST /v1/contacts/{id}/abandon": waiting,
        "POST /v1/contacts/{id}/transfer": moving,
        "POST /v1/contacts/{id}/complete": held,
        "POST /v1/contacts/{id}/wrapup-done": wrapping,
        "GET /v1/agents/{id}": "a1",
        "PUT /v1/agents/{id}": "a1",
        "POST /v1/agents/{id}/status": "a3",
        "POST /v1/agents/{id}/heartbeat": "a1",
        "GET /v1/agents/{id}/offers": "a1",
        "POST /v1/offers/{id}/accept": offered,
        "POST /v1/offers/{id}/reject": rejected,
        "GET /v1/queues/{name}": "chat",
    }


def _fuzz_one(
    schema: Any, run: Run, base_url: str, headers: dict[str, str], session: requests.Session
) -> list[str]:
    """One pass; returns its failures (at most two), never raises."""
    method, path = run.label.split(" ", 1)
    op = schema[path][method]
    doc = build_document()
    body_schema = doc["paths"][path][method.lower()].get("requestBody", {})
    body_schema = body_schema.get("content", {}).get("application/json", {}).get("schema", {})
    found: list[str] = []
    # the token is fixed, not generated: a negative case never just lacks it
    kwargs: dict[str, Any] = {"generation_mode": run.mode, "headers": headers}
    if run.path_id is not None:
        name = "name" if "{name}" in path else "id"
        kwargs["path_parameters"] = {name: run.path_id}
    checks = [*CHECKS]
    if run.mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)

    @settings(
        max_examples=run.examples,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(**kwargs))
    def one(case: Any) -> None:
        if len(found) >= 2:
            return
        if run.patch is not None:
            run.patch(case)
        if run.accepts and isinstance(case.body, dict):
            case.body = _integer_literals(doc, body_schema, case.body)
        response = case.call(base_url=base_url, session=session)
        try:
            case.validate_response(response, checks=checks)
            if run.accepts:
                assert response.status_code in run.accepts, "valid data was refused"
        except (AssertionError, FailureGroup) as exc:
            found.append(
                f"{run.label} as {run.token} ({run.mode.value}): {exc}\n"
                f"  -> {response.status_code} {response.text[:500]}\n"
                f"  {case.as_curl_command()[:1000]}"
            )

    try:
        one()
    except Unsatisfiable:
        # no invalid request can be written (e.g. GET /v1/queues/{name} takes any name)
        assert run.mode is GenerationMode.NEGATIVE, run
    except Exception as exc:
        raise AssertionError(f"{run.label} as {run.token} ({run.mode.value})") from exc
    return found


# Invalid input may also be refused as too large (413) or of the wrong media type (415).
# Event streams (SSE) never end: read one event, not until the read timeout.
CONFIG = {
    "max-stream-events": 1,
    "checks": {
        "negative_data_rejection": {
            "expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 422]
        }
    },
}


def _fuzz(api: Api, base_url: str, runs: list[Run]) -> list[str]:
    config = schemathesis.Config.from_dict(CONFIG)
    schema = schemathesis.openapi.from_dict(build_document(), config=config)
    failures: list[str] = []
    with requests.Session() as session:
        for run in runs:
            failures += _fuzz_one(schema, run, base_url, api.auth(run.token), session)
    return failures


async def test_the_live_server_matches_the_document(make_api: ApiFactory) -> None:
    api = await make_api()
    base_url = str(api.client.make_url("")).rstrip("/")
    plan = _plan(await _seed(api))
    # schemathesis' client is synchronous: run it in a thread so the loop serves it
    failures = await asyncio.wait_for(asyncio.to_thread(_fuzz, api, base_url, plan), timeout=240)
    assert not failures, "\n\n".join(failures)


# -- the body rules, case by case -------------------------------------------------------


BODY_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("NewContact", {"channel": "chat"}, True),
    ("NewContact", {"channel": "chat", "queue": None, "priority": None}, True),
    ("NewContact", {}, False),
    ("NewContact", {"channel": None}, False),
    ("NewContact", {"channel": "chat", "colour": "red"}, False),
    ("NewContact", {"channel": "chat", "priority": 1001}, False),
    ("NewContact", {"channel": "chat", "priority": True}, False),
    ("NewContact", {"channel": "chat", "queue": "a:b"}, False),
    ("NewContact", {"channel": "chat", "queue": "x" * 65}, False),
    ("NewContact", {"channel": "chat", "skills": {"spanish": 5}}, True),
    ("NewContact", {"channel": "chat", "skills": {"spanish": 6}}, False),
    ("NewContact", {"channel": "chat", "skills": {"a b": 1}}, False),
    ("NewContact", {"channel": "chat", "customer": {"ssn": "1"}}, False),
    ("NewContact", {"channel": "chat", "customer": {"name": None}}, True),
    ("NewContact", {"channel": "chat", "customer": {"name": "x" * 321}}, False),
    ("NewContact", {"channel": "chat", "language": "x" * 36}, False),
    ("NewContact", {"channel": "chat", "subject": "x" * 10_000}, True),
    ("NewContact", {"channel": "chat", "body": "x" * 60_001}, False),
    ("NewContact", {"channel": "chat", "attributes": {"a": "x" * 65_536}}, True),
    ("NewContact", {"channel": "chat", "attributes": {"a": "x" * 65_537}}, False),
    ("NewContact", {"channel": "chat", "attributes": {"a": [[[[[[1]]]]]]}}, True),
    ("NewContact", {"channel": "chat", "attributes": {"a": [[[[[[[1]]]]]]]}}, False),
    ("NewContact", {"channel": "chat", "attributes": {"a": [[[[[[[]]]]]]]}}, True),
    ("NewContact", {"channel": "chat", "attributes": [1]}, False),
    ("NewContact", {"channel": "chat", "attributes": {"n": [2**64 - 1, -(2**63), 1e19]}}, True),
    ("NewContact", {"channel": "chat", "attributes": {"n": 2**64}}, False),
    ("NewContact", {"channel": "chat", "attributes": {"n": -(2**63) - 1}}, False),
    ("NewContact", {"channel": "chat", "attributes": {"n": 2e19}}, False),
    ("Transfer", {"queue": "chat"}, True),
    ("Transfer", {"queue": "chat", "agent": None}, True),
    ("Transfer", {"queue": "chat", "agent": "a1"}, False),
    ("Transfer", {"queue": None, "agent": None}, False),
    ("Transfer", {}, False),
    ("AgentUpsert", {"pool": "inhouse"}, True),
    ("AgentUpsert", {"pool": "inhouse", "status": "busy"}, False),
    ("AgentUpsert", {"pool": "inhouse", "capacity": {"chat": 0}}, True),
    ("AgentUpsert", {"pool": "inhouse", "capacity": {"chat": 101}}, False),
    ("AgentUpsert", {"name": "Ann"}, False),
    ("AgentStatusChange", {"status": "away", "reason": "lunch"}, True),
    ("AgentStatusChange", {"status": "away", "reason": "at lunch"}, False),
    ("Empty", {}, True),
    ("Empty", {"x": 1}, False),
]


async def test_the_body_schemas_and_the_server_agree(make_api: ApiFactory) -> None:
    """Each body against its schema and against the server: both take it or both refuse it."""
    doc = build_document()
    api = await make_api()
    admin, ingest = api.auth("admin"), api.auth("ingest")
    await api.client.put("/v1/agents/a9", json={"pool": "inhouse"}, headers=admin)
    targets = {
        "NewContact": ("POST", "/v1/contacts", "ingest"),
        "Transfer": ("POST", "/v1/contacts/{cid}/transfer", "admin"),
        "AgentUpsert": ("PUT", "/v1/agents/a9", "admin"),
        "AgentStatusChange": ("POST", "/v1/agents/a9/status", "admin"),
        "Empty": ("POST", "/v1/offers/{cid}/accept", "agent"),
    }
    for schema, body, valid in BODY_CASES:
        assert _schema_validator(doc, schema).is_valid(body) is valid, (schema, body)
        method, path, token = targets[schema]
        if "{cid}" in path:
            r = await api.client.post("/v1/contacts", json={"channel": "chat"}, headers=ingest)
            path = path.format(cid=(await r.json())["id"])
        r = await api.client.request(method, path, json=body, headers=api.auth(token))
        refused = r.status in (400, 422)
        assert refused is not valid, (schema, body, r.status, await r.text())
