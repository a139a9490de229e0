"""Check HTTP responses against Twilio's OpenAPI 3.0 specs (``specs/*.json``).

Pure functions of (method, path, status, headers, body): no I/O besides loading the specs, no
knowledge of the SDK. ``Validator.check`` returns a list of human-readable violations; an empty
list means the response is what Twilio's contract promises.

What is checked
- The request path matches an operation of one of the specs (by method and path template).
  An unmatched path is a violation, so endpoints that nobody validates get noticed.
- 2xx: the status code is one the operation declares; 204 has an empty body; anything else is
  JSON (``Content-Type: application/json``) valid against the operation's response schema.
  OAS 3.0 ``nullable`` is honoured; in strict mode (default) every object schema with declared
  ``properties`` must carry exactly those keys (values may be null where nullable): a missing key
  becomes ``None`` in the SDK, an extra one is invented by us.
- Formats: ``date-time-rfc-2822`` must read like ``Thu, 30 Jul 2015 20:12:31 +0000`` and parse
  with ``email.utils.parsedate_to_datetime`` (weekday consistent); ``date-time`` must be
  ``YYYY-MM-DDTHH:MM:SSZ`` (twilio-python parses only that form); ``date`` is ``YYYY-MM-DD``.
  Other formats (uri, phone-number, ...) are not checked.
- 2010 list envelopes: exactly one key outside twilio-python's META_KEYS (else the SDK raises
  "Page Records can not be deserialized"). v1 list envelopes: ``meta.key`` names the list key.
- 4xx/5xx: the body is JSON with exactly ``code`` (int), ``message`` (str), ``more_info`` (str),
  ``status`` (int, equal to the HTTP status) and optionally ``details`` (object).
"""

from __future__ import annotations

import copy
import email.utils
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import jsonschema

SPEC_DIR = Path(__file__).resolve().parent / "specs"
SPEC_FILES = (
    "twilio_api_v2010.json",
    "twilio_messaging_v1.json",
    "twilio_monitor_v1.json",
    "twilio_iam_v1.json",
    "twilio_content_v1.json",
)

# twilio.base.page.Page.META_KEYS (twilio-python 9.x)
META_KEYS_2010 = frozenset(
    {
        "end",
        "first_page_uri",
        "next_page_uri",
        "last_page_uri",
        "page",
        "page_size",
        "previous_page_uri",
        "total",
        "num_pages",
        "start",
        "uri",
    }
)

ERROR_KEYS_REQUIRED = frozenset({"code", "message", "more_info", "status"})
ERROR_KEYS_ALLOWED = ERROR_KEYS_REQUIRED | {"details"}

HTTP_METHODS = ("get", "post", "put", "patch", "delete")

# ---------------------------------------------------------------------------------------------
# formats

_RFC2822_RE = re.compile(
    r"^(?P<wd>Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$"
)
_V1_DATETIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_DATE_RE = re.compile(r"^\d{4}-\d\d-\d\d$")

FORMAT_CHECKER = jsonschema.FormatChecker(formats=())


@FORMAT_CHECKER.checks("date-time-rfc-2822", raises=(ValueError, TypeError))
def _is_rfc2822(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    m = _RFC2822_RE.match(value)
    if not m:
        return False
    parsed = email.utils.parsedate_to_datetime(value)
    return parsed.strftime("%a") == m.group("wd")


@FORMAT_CHECKER.checks("date-time", raises=(ValueError, TypeError))
def _is_v1_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    if not _V1_DATETIME_RE.match(value):
        return False
    datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")  # what twilio.base.deserialize does
    return True


@FORMAT_CHECKER.checks("date", raises=(ValueError, TypeError))
def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_RE.match(value):
        return False
    date.fromisoformat(value)
    return True


# ---------------------------------------------------------------------------------------------
# OAS 3.0 schema -> JSON Schema (draft 7)

# Documented places where real Twilio (and its own fixtures) differ from the spec while both
# SDKs accept either form (twilio-contract.md sections 6, 7, 10). A property with one of these
# names may also take the alternative value.
LENIENT_PROPERTIES: dict[str, dict] = {
    # IncomingPhoneNumber: unset application sids come back as "" (fixture), the spec says ^AP...$ or null.
    "sms_application_sid": {"const": ""},
    "voice_application_sid": {"const": ""},
    # Usage records: the spec says number, fixtures say "2192.84855"; python parses both with Decimal.
    "price": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
    # AvailablePhoneNumbers: the spec says number, fixtures say "19.720000".
    "latitude": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
    "longitude": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
}

# Keys real responses carry that a spec schema does not declare (strict mode would call them
# invented): schema-name regex -> {property: JSON schema}.
EXTRA_PROPERTIES: dict[str, dict[str, dict]] = {
    # IncomingPhoneNumber: twilio-python's fixtures (captured responses) carry
    # "subresource_uris": {"assigned_add_ons": ".../AssignedAddOns.json"} (contract section 6).
    r"api\.v2010\.account\.incoming_phone_number(\.incoming_phone_number_\w+)?": {
        "subresource_uris": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

# AvailablePhoneNumbers searches: old fixtures return only {"available_phone_numbers": [...], "uri": ...}.
MINIMAL_ENVELOPE_OPERATIONS = re.compile(r"^ListAvailablePhoneNumber(?!Country)")

_DROP_KEYS = {"description", "example", "examples", "x-twilio", "externalDocs", "xml", "readOnly", "writeOnly", "deprecated", "discriminator"}


def oas_to_jsonschema(node: Any, strict: bool) -> Any:
    """Convert one OAS 3.0 schema object (recursively) into draft-7 JSON Schema."""
    if isinstance(node, list):
        return [oas_to_jsonschema(n, strict) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        # OAS 3.0: siblings of $ref are ignored.
        return {"$ref": node["$ref"]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: _lenient(name, oas_to_jsonschema(sub, strict)) for name, sub in value.items()}
        elif key in ("items", "not") or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = oas_to_jsonschema(value, strict)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [oas_to_jsonschema(sub, strict) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    props = out.get("properties")
    if strict and props and out.get("type", "object") == "object":
        out.setdefault("required", sorted(props))
        out.setdefault("additionalProperties", False)
    if node.get("nullable"):
        if "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
        elif "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


def _lenient(name: str, schema: Any) -> Any:
    alt = LENIENT_PROPERTIES.get(name)
    return {"anyOf": [schema, alt]} if alt else schema


# ---------------------------------------------------------------------------------------------
# operations


@dataclass
class Operation:
    spec: str
    method: str  # upper case
    template: str  # e.g. /2010-04-01/Accounts/{Sid}.json
    regex: re.Pattern
    op: dict
    literal_len: int

    @property
    def operation_id(self) -> str:
        return self.op.get("operationId", f"{self.method} {self.template}")

    @property
    def is_2010(self) -> bool:
        return self.template.startswith("/2010-04-01/")


def template_regex(template: str) -> re.Pattern:
    parts = re.split(r"(\{[^}/]+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
    return re.compile(f"^{rx}$")


@dataclass
class _Spec:
    name: str
    doc: dict
    components: dict = field(default_factory=dict)  # converted components (strict flavour)


class Validator:
    """Holds the parsed specs; ``check`` validates one response."""

    def __init__(self, spec_dir: Path = SPEC_DIR, spec_files: Iterable[str] = SPEC_FILES, strict: bool = True):
        self.strict = strict
        self.specs: dict[str, _Spec] = {}
        self.operations: list[Operation] = []
        self._validators: dict[tuple[str, str, str, str], jsonschema.Draft7Validator] = {}
        for name in spec_files:
            doc = json.loads((Path(spec_dir) / name).read_text())
            spec = _Spec(name=name, doc=doc)
            schemas = {k: oas_to_jsonschema(v, strict) for k, v in doc.get("components", {}).get("schemas", {}).items()}
            for pattern, extra in EXTRA_PROPERTIES.items():
                for schema_name, schema in schemas.items():
                    if re.fullmatch(pattern, schema_name) and "properties" in schema:
                        for prop, prop_schema in extra.items():
                            schema["properties"].setdefault(prop, prop_schema)  # allowed, not required
            spec.components = {"schemas": schemas}
            self.specs[name] = spec
            for template, item in doc.get("paths", {}).items():
                for method in HTTP_METHODS:
                    if method in item:
                        literal = re.sub(r"\{[^}]+\}", "", template)
                        self.operations.append(
                            Operation(name, method.upper(), template, template_regex(template), item[method], len(literal))
                        )
        # Most specific first: /v1/Services/Usecases before /v1/Services/{Sid}.
        self.operations.sort(key=lambda o: -o.literal_len)

    # -- lookup ---------------------------------------------------------------------------------

    def find_operation(self, method: str, path: str) -> Operation | None:
        method = method.upper()
        for op in self.operations:
            if op.method == method and op.regex.match(path):
                return op
        return None

    def operation_by_id(self, operation_id: str) -> Operation:
        for op in self.operations:
            if op.op.get("operationId") == operation_id:
                return op
        raise KeyError(operation_id)

    def response_validator(self, op: Operation, status: int, content_type: str = "application/json"):
        key = (op.spec, op.method, op.template, str(status))
        if key not in self._validators:
            resp = op.op["responses"][str(status)]
            schema = resp.get("content", {}).get(content_type, {}).get("schema")
            if schema is None:
                self._validators[key] = None
            else:
                converted = oas_to_jsonschema(schema, self.strict)
                if MINIMAL_ENVELOPE_OPERATIONS.match(op.operation_id) and "required" in converted:
                    converted["required"] = [k for k in converted["required"] if k not in META_KEYS_2010 or k == "uri"]
                root = {
                    "allOf": [converted],
                    "components": self.specs[op.spec].components,
                }
                self._validators[key] = jsonschema.Draft7Validator(root, format_checker=FORMAT_CHECKER)
        return self._validators[key]

    # -- checks ---------------------------------------------------------------------------------

    def check(
        self,
        method: str,
        url: str,
        status: int,
        body: str | bytes | None,
        headers: Mapping[str, str] | None = None,
        base_url: str | None = None,
    ) -> list[str]:
        """Validate one response. ``url`` may be absolute; ``base_url``'s path prefix is stripped."""
        method = method.upper()
        path = urlsplit(url).path
        if base_url:
            prefix = urlsplit(base_url).path.rstrip("/")
            if prefix and path.startswith(prefix):
                path = path[len(prefix):]
        where = f"{method} {path} -> {status}"
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        body = body or ""
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        content_type = headers.get("content-type", "")

        op = self.find_operation(method, path)
        if op is None:
            return [f"{where}: no operation in the specs matches this method and path"]
        where = f"{where} ({op.operation_id})"

        if 400 <= status < 600:
            return [f"{where}: {v}" for v in self.check_error_body(status, body, content_type)]
        if not 200 <= status < 300:
            return [f"{where}: unexpected HTTP status {status}"]

        declared = sorted(k for k in op.op.get("responses", {}) if k.startswith("2"))
        if str(status) not in op.op.get("responses", {}):
            return [f"{where}: status {status} is not declared by the spec (declared: {', '.join(declared)})"]
        if status == 204:
            return [] if not body.strip() else [f"{where}: 204 must have an empty body, got {body[:200]!r}"]

        problems: list[str] = []
        if not content_type.split(";")[0].strip().lower() == "application/json":
            problems.append(f"Content-Type is {content_type!r}, expected application/json")
        try:
            payload = json.loads(body)
        except ValueError as e:
            return [f"{where}: body is not JSON ({e}): {body[:200]!r}"]

        validator = self.response_validator(op, status)
        if validator is not None:
            for err in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
                problems.append(f"{_json_path(err.absolute_path)}: {_short(err)}")
        problems += self.check_envelope(op, payload)
        return [f"{where}: {p}" for p in problems]

    def check_envelope(self, op: Operation, payload: Any) -> list[str]:
        """List-envelope rules the SDKs depend on (beyond the JSON schema)."""
        if op.method != "GET" or not isinstance(payload, dict):
            return []
        problems = []
        if op.is_2010 and ("uri" in payload and ("page_size" in payload or "first_page_uri" in payload)):
            records = sorted(set(payload) - META_KEYS_2010)
            if len(records) != 1:
                problems.append(
                    f"2010 list envelope must have exactly one non-meta key (twilio-python Page.load_page), got {records}"
                )
        elif not op.is_2010 and isinstance(payload.get("meta"), dict):
            key = payload["meta"].get("key")
            if key not in payload or not isinstance(payload.get(key), list):
                problems.append(f"v1 meta.key is {key!r} but the payload has no such list (keys: {sorted(payload)})")
        return problems

    @staticmethod
    def check_error_body(status: int, body: str, content_type: str = "application/json") -> list[str]:
        problems = []
        if not content_type.split(";")[0].strip().lower() == "application/json":
            problems.append(f"error Content-Type is {content_type!r}, expected application/json")
        try:
            payload = json.loads(body)
        except ValueError:
            return problems + [f"error body is not JSON: {body[:200]!r}"]
        if not isinstance(payload, dict):
            return problems + [f"error body is not an object: {body[:200]!r}"]
        keys = set(payload)
        if not ERROR_KEYS_REQUIRED <= keys:
            problems.append(f"error body lacks {sorted(ERROR_KEYS_REQUIRED - keys)}: {body[:300]}")
        if keys - ERROR_KEYS_ALLOWED:
            problems.append(f"error body has extra keys {sorted(keys - ERROR_KEYS_ALLOWED)}: {body[:300]}")
        if "code" in payload and not _is_int(payload["code"]):
            problems.append(f"error code must be an integer, got {payload['code']!r}")
        if "status" in payload and (not _is_int(payload["status"]) or payload["status"] != status):
            problems.append(f"error status must be the integer HTTP status {status}, got {payload['status']!r}")
        for key in ("message", "more_info"):
            if key in payload and not isinstance(payload[key], str):
                problems.append(f"error {key} must be a string, got {payload[key]!r}")
        if "details" in payload and not isinstance(payload["details"], dict):
            problems.append(f"error details must be an object, got {payload['details']!r}")
        return problems


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _json_path(path: Iterable[Any]) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _short(err: jsonschema.ValidationError) -> str:
    msg = err.message
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return msg
