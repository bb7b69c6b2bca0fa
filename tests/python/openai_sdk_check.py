"""The gateway through the official OpenAI Python SDK, with its typed models held strictly.

Usage: python3 tests/python/openai_sdk_check.py <base_url> <client_key>

Run by tests/it/gateway_wire.rs against a gateway on the polyrelay simulator, whose routes
are `openai`, `anthropic` and `gemini` (a text answer, the JSON object in ANSWER) and
`openai-tools`, `anthropic-tools` and `gemini-tools` (a call of `track_order`), each served in
that vendor's own wire format. For every dialect: a plain answer, a stream with usage, a
tool call (plain and streamed) and a `response_format` json_schema request; then an unknown
model (`openai.NotFoundError`) and `models.retrieve`. Every answer and chunk is also read from
the raw body and validated with `model_validate(..., strict=True)` and explicit type checks
of `object`, `id`, `created` and `model`. Exits 0 when all holds, else prints what failed.
"""

import json
import sys

import openai
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

DIALECTS = ("openai", "anthropic", "gemini")
ANSWER = {"order": "A-17", "status": "shipped"}
MESSAGES = [{"role": "user", "content": "Where is my order A-17?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "track_order",
            "description": "Where an order is.",
            "parameters": {
                "type": "object",
                "properties": {"order": {"type": "string"}},
                "required": ["order"],
            },
        },
    }
]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "order_status",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"order": {"type": "string"}, "status": {"type": "string"}},
            "required": ["order", "status"],
            "additionalProperties": False,
        },
    },
}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def identity(obj, kind, what):
    """`object`, `id`, `created` and `model` as OpenAI sends them, checked by type."""
    check(obj.get("object") == kind, f"{what}: object {obj.get('object')!r}, not {kind!r}")
    check(isinstance(obj.get("id"), str) and obj["id"], f"{what}: id {obj.get('id')!r}")
    created = obj.get("created")
    check(
        isinstance(created, int) and not isinstance(created, bool) and created > 1_600_000_000,
        f"{what}: created {created!r}",
    )
    check(isinstance(obj.get("model"), str) and obj["model"], f"{what}: model {obj.get('model')!r}")


def answer(client, what, **kw):
    """A plain completion: the raw JSON validated strictly, and the SDK's parsed object."""
    raw = client.chat.completions.with_raw_response.create(messages=MESSAGES, **kw)
    body = json.loads(raw.text)
    identity(body, "chat.completion", what)
    ChatCompletion.model_validate(body, strict=True)
    return raw.parse()


def stream(client, what, include_usage, **kw):
    """A streamed completion: every raw chunk validated strictly; the chunks as parsed."""
    options = {"include_usage": True} if include_usage else None
    extra = {"stream_options": options} if options else {}
    chunks = []
    with client.chat.completions.with_streaming_response.create(
        messages=MESSAGES, stream=True, **extra, **kw
    ) as resp:
        done = False
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[len("data: ") :]
            if data == "[DONE]":
                done = True
                break
            obj = json.loads(data)
            check("error" not in obj, f"{what}: an error event: {data}")
            identity(obj, "chat.completion.chunk", f"{what}, chunk {len(chunks)}")
            chunks.append(ChatCompletionChunk.model_validate(obj, strict=True))
        check(done, f"{what}: no [DONE]")
    check(chunks, f"{what}: no chunk")
    ids = {c.id for c in chunks}
    check(len(ids) == 1, f"{what}: one id for the whole stream, got {ids}")
    created = {c.created for c in chunks}
    check(len(created) == 1, f"{what}: one created for the whole stream, got {created}")
    body, last = chunks[:-1], chunks[-1]
    if include_usage:
        check(last.choices == [] and last.usage is not None, f"{what}: usage last, alone: {last}")
        check(last.usage.total_tokens > 0, f"{what}: usage counts: {last.usage}")
        for i, c in enumerate(body):
            check(c.usage is None, f"{what}: usage on chunk {i}, not only the last: {c}")
    else:
        for i, c in enumerate(chunks):
            check(c.usage is None, f"{what}: usage on chunk {i} without include_usage: {c}")
        body = chunks
    for i, c in enumerate(body):
        check(c.choices, f"{what}: chunk {i} has no choice")
    # The SDK's own streaming reader takes the same stream.
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(messages=MESSAGES, stream=True, **extra, **kw)
        if c.choices
    )
    return body, text


def text_of(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def tool_calls_of(chunks):
    calls = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            call = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = call["id"] or tc.id
            if tc.function is not None:
                call["name"] += tc.function.name or ""
                call["arguments"] += tc.function.arguments or ""
    return [calls[i] for i in sorted(calls)]


def dialect(client, d):
    # Plain.
    r = answer(client, f"{d}: plain", model=d)
    check(json.loads(r.choices[0].message.content) == ANSWER, f"{d}: plain text {r}")
    check(r.choices[0].finish_reason == "stop", f"{d}: finish {r.choices[0].finish_reason}")
    check(r.usage is not None and r.usage.total_tokens > 0, f"{d}: usage {r.usage}")

    # Streamed, with and without usage.
    for include_usage in (True, False):
        what = f"{d}: streamed, include_usage {include_usage}"
        chunks, sdk_text = stream(client, what, include_usage, model=d)
        check(json.loads(text_of(chunks)) == ANSWER, f"{what}: text {text_of(chunks)!r}")
        check(sdk_text == text_of(chunks), f"{what}: the SDK's reader read {sdk_text!r}")
        check(chunks[-1].choices[0].finish_reason == "stop", f"{what}: finish {chunks[-1]}")

    # Tools, plain and streamed.
    r = answer(client, f"{d}: tools", model=f"{d}-tools", tools=TOOLS)
    calls = r.choices[0].message.tool_calls or []
    check(r.choices[0].finish_reason == "tool_calls", f"{d}: tools finish {r}")
    check(len(calls) == 1 and calls[0].function.name == "track_order", f"{d}: tools {r}")
    check(json.loads(calls[0].function.arguments) == {"order": "A-17"}, f"{d}: args {calls}")
    check(calls[0].id and calls[0].type == "function", f"{d}: call {calls[0]}")
    chunks, _ = stream(client, f"{d}: tools streamed", True, model=f"{d}-tools", tools=TOOLS)
    calls = tool_calls_of(chunks)
    check(len(calls) == 1 and calls[0]["name"] == "track_order", f"{d}: streamed tools {calls}")
    check(json.loads(calls[0]["arguments"]) == {"order": "A-17"}, f"{d}: streamed args {calls}")
    check(chunks[-1].choices[0].finish_reason == "tool_calls", f"{d}: streamed finish")

    # response_format json_schema.
    r = answer(client, f"{d}: json_schema", model=d, response_format=SCHEMA)
    check(json.loads(r.choices[0].message.content) == ANSWER, f"{d}: json_schema {r}")


def main():
    base_url, key = sys.argv[1], sys.argv[2]
    # An optional third argument names the dialect routes, comma-separated.
    dialects = sys.argv[3].split(",") if len(sys.argv) > 3 else DIALECTS
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=20)
    for d in dialects:
        dialect(client, d)

    # An unknown model is OpenAI's 404, typed by the SDK.
    try:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
        raise AssertionError("an unknown model was answered")
    except openai.NotFoundError as e:
        check(e.status_code == 404, f"unknown model: status {e.status_code}")
        check(isinstance(e.body, dict) and e.body.get("message"), f"unknown model: body {e.body}")
    # A wrong key is OpenAI's 401.
    try:
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0).models.list()
        raise AssertionError("a wrong key was let in")
    except openai.AuthenticationError:
        pass

    # models.retrieve and models.list.
    for d in DIALECTS:
        raw = client.models.with_raw_response.retrieve(d)
        m = Model.model_validate(json.loads(raw.text), strict=True)
        check(m.id == d and m.object == "model", f"models.retrieve({d!r}): {m}")
    listed = {m.id for m in client.models.list()}
    check(set(DIALECTS) <= listed, f"models.list: {listed}")
    try:
        client.models.retrieve("no-such-model")
        raise AssertionError("models.retrieve of an unknown model answered")
    except openai.NotFoundError:
        pass
    print(f"openai {openai.__version__}: every check passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
